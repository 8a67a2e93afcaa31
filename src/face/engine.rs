//! The face engine on real models: BlazeFace → FaceMesh (two passes) → five points → alignment → recogniser
//! (dlib's ResNet on a 150×150 dlib-aligned chip by default; MobileFace on a 112×112 ArcFace chip, or both fused).
use image::RgbImage;

use super::compare::Recogniser;
use super::detect::{self, Detection};
use super::geometry::{self, Point, Similarity, ARCFACE_112};
use super::models::provision::Installed;
use super::runtime::{environment, OnnxModel, RuntimeError};
use crate::config::RecogniserPreset;

/// One analysed face.
#[derive(Debug, Clone)]
pub struct Face {
    pub detection: Detection,
    /// 468 FaceMesh landmarks (x, y, z) in image pixels.
    pub mesh: Vec<[f32; 3]>,
    /// FaceMesh's face presence score.
    pub mesh_score: f32,
    /// Eye (image left), eye (image right), nose tip, mouth corners, in image pixels.
    pub points: [Point; 5],
    /// L2-normalised identity embedding (128-d dlib, 256-d MobileFace, 384-d fused).
    pub embedding: Vec<f32>,
    /// The square aligned crop (HWC, RGB 0..255) of the active recogniser: 150×150 for dlib (and fused),
    /// 112×112 for MobileFace; its side is [`Face::chip_side`].
    pub chip: Vec<f32>,
}

impl Face {
    /// The side of the square chip, in pixels.
    pub fn chip_side(&self) -> usize {
        ((self.chip.len() / 3) as f64).sqrt().round() as usize
    }
}

/// Why an image cannot be used where exactly one face is needed.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error(transparent)]
    Image(#[from] super::image::ImageError),
    #[error("no face was found in the image")]
    NoFace,
    #[error("{0} faces were found in the image; exactly one is needed")]
    ManyFaces(usize),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl FaceError {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            FaceError::Image(e) if e.is_size() => "IMAGE_TOO_LARGE",
            FaceError::Image(_) => "INVALID_IMAGE",
            FaceError::NoFace => "NO_FACE",
            FaceError::ManyFaces(_) => "MULTIPLE_FACES",
            FaceError::Runtime(_) => "ENGINE_ERROR",
        }
    }
}

/// Decodes an image and returns its only face.
pub fn single_face(
    engine: &dyn FaceEngine,
    bytes: &[u8],
    limits: super::image::DecodeLimits,
) -> Result<(RgbImage, Face), FaceError> {
    let img = super::image::decode(bytes, limits)?;
    let mut faces = engine.analyze(&img)?;
    match faces.len() {
        0 => Err(FaceError::NoFace),
        1 => Ok((img, faces.remove(0))),
        n => Err(FaceError::ManyFaces(n)),
    }
}

/// The engine the rest of the service uses; tests may substitute their own.
pub trait FaceEngine: Send + Sync {
    /// Every face in the image, largest first.
    fn analyze(&self, img: &RgbImage) -> Result<Vec<Face>, RuntimeError>;
    /// Names the recogniser, so stored embeddings of another recogniser are not compared with this one's.
    fn recogniser_id(&self) -> String {
        "unnamed".to_string()
    }

    /// The recogniser behind the embeddings: its cosine → score calibration ([`Recogniser::score`],
    /// [`Recogniser::score_fn`]) and its name.
    fn recogniser(&self) -> Recogniser {
        Recogniser::default()
    }
}

/// Engine settings. Detector: every real face scored ≥ 0.82 in the measurements, wrong boxes appeared at 0.57–0.61.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub min_detection_score: f32,
    pub nms_iou: f32,
    pub threads: usize,
    /// Which recogniser(s) produce the embedding.
    pub recogniser: Recogniser,
    /// An operator's recogniser replacing MobileFace (112×112 ArcFace chip, MobileFace's calibration until the
    /// operator calibrates it): file, output name (default: first output), preprocessing.
    pub recogniser_override: Option<(std::path::PathBuf, Option<String>)>,
    pub recogniser_preset: RecogniserPreset,
    /// Operator files replacing provisioned stages, by model name (same input layout and output names).
    pub model_files: std::collections::BTreeMap<String, std::path::PathBuf>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            min_detection_score: 0.75,
            nms_iou: 0.3,
            threads: 2,
            recogniser: Recogniser::default(),
            recogniser_override: None,
            recogniser_preset: RecogniserPreset::Raw,
            model_files: Default::default(),
        }
    }
}

impl EngineSettings {
    /// The settings a service config asks for.
    pub fn from_config(c: &crate::config::Config) -> EngineSettings {
        EngineSettings {
            recogniser: c.recogniser,
            recogniser_override: c
                .recogniser_model
                .clone()
                .map(|p| (p, c.recogniser_output.clone())),
            recogniser_preset: c.recogniser_preset,
            model_files: c.model_files.clone(),
            ..EngineSettings::default()
        }
    }
}

/// Scales an aligned 0..255 crop as a recogniser expects.
pub fn preprocess(chip: &[f32], preset: RecogniserPreset) -> Vec<f32> {
    match preset {
        RecogniserPreset::Raw => chip.to_vec(),
        RecogniserPreset::Centered => chip.iter().map(|v| (v - 127.5) / 128.0).collect(),
        RecogniserPreset::Unit => chip.iter().map(|v| v / 255.0).collect(),
    }
}

/// The chip a recogniser takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChipLayout {
    /// 112×112, the five ArcFace points (eye centres, nose tip, mouth corners).
    ArcFace112,
    /// 150×150, dlib's five-point template (eye corners, nose base) with padding 0.25, as dlib's
    /// `get_face_chip(img, shape, 150, 0.25)`; the points come from FaceMesh ([`dlib_points`]).
    Dlib150,
}

/// dlib's five-point template in a unit square (outer and inner corner of the image-right eye, of the image-left
/// eye, base of the nose), as in dlib's `get_face_chip_details`.
const DLIB_TEMPLATE: [(f32, f32); 5] = [
    (0.859_567_45, 0.213_498_15),
    (0.646_060_5, 0.228_967_44),
    (0.120_575_06, 0.213_727_45),
    (0.334_085_06, 0.229_064_24),
    (0.490_112_3, 0.627_797_5),
];

impl ChipLayout {
    pub fn side(self) -> usize {
        match self {
            ChipLayout::ArcFace112 => 112,
            ChipLayout::Dlib150 => 150,
        }
    }

    /// Where the layout's five points go in the chip.
    pub fn template(self) -> [Point; 5] {
        match self {
            ChipLayout::ArcFace112 => ARCFACE_112,
            ChipLayout::Dlib150 => {
                let (pad, side) = (0.25f32, 150.0f32);
                DLIB_TEMPLATE.map(|(x, y)| {
                    Point::new(
                        (pad + x) / (2.0 * pad + 1.0) * side,
                        (pad + y) / (2.0 * pad + 1.0) * side,
                    )
                })
            }
        }
    }

    /// The layout's five points from FaceMesh landmarks.
    pub fn points(self, mesh: &[[f32; 3]]) -> [Point; 5] {
        match self {
            ChipLayout::ArcFace112 => five_points(mesh),
            ChipLayout::Dlib150 => dlib_points(mesh),
        }
    }

    /// The aligned chip (HWC, RGB 0..255). The dlib chip is box-filtered when it shrinks the face (dlib filters
    /// too, through an image pyramid), which keeps large photos from aliasing.
    pub fn align(self, img: &RgbImage, points: &[Point; 5]) -> Option<Vec<f32>> {
        let to_template = Similarity::fit(points, &self.template())?;
        let side = self.side();
        Some(match self {
            ChipLayout::ArcFace112 => geometry::warp(img, &to_template.inverse(), side, side),
            ChipLayout::Dlib150 => geometry::warp_area(img, &to_template.inverse(), side, side),
        })
    }
}

/// One loaded recogniser.
struct Recognition {
    model: OnnxModel,
    output: String,
    layout: ChipLayout,
    preset: RecogniserPreset,
    /// Share of this recogniser's cosine in a fused cosine.
    weight: f32,
}

/// dlib's share of the fused cosine. On `shared/data/faces` the gap between the lowest genuine and the highest
/// impostor cosine (in impostor standard deviations) grows with dlib's share (0.58 at 0.5, 1.42 at 0.7, 2.1 for
/// dlib alone): fusion does not beat dlib there, so it is optional and keeps MobileFace's share small.
pub const FUSED_DLIB_WEIGHT: f32 = 0.7;

/// The ONNX implementation.
pub struct OnnxEngine {
    front: OnnxModel,
    back: OnnxModel,
    mesh: OnnxModel,
    /// One recogniser, or two when fused (dlib first).
    recognisers: Vec<Recognition>,
    recogniser: Recogniser,
    settings: EngineSettings,
}

const DETECTOR_OUTPUTS: [&str; 4] = ["Identity", "Identity_2", "Identity_1", "Identity_3"];
const MESH_OUTPUTS: [&str; 2] = ["Identity_2", "Identity_1"];
const MOBILEFACE_OUTPUT: &str = "batchnorm0/add_1";
const DLIB_OUTPUT: &str = "descriptor";

/// Cosine similarity of two L2-normalised embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn l2_normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

impl OnnxEngine {
    pub fn load(
        installed: &Installed,
        settings: EngineSettings,
    ) -> Result<OnnxEngine, RuntimeError> {
        let env = environment(&installed.runtime_lib)?;
        let model = |name: &str| {
            let path = settings
                .model_files
                .get(name)
                .or_else(|| installed.models.get(name))
                .ok_or_else(|| RuntimeError::Model(name.to_string(), "not provisioned".into()))?;
            OnnxModel::load(env, name, path, settings.threads)
        };
        let mobileface = || -> Result<Recognition, RuntimeError> {
            let (model, output) = match &settings.recogniser_override {
                Some((path, output)) => {
                    let m = OnnxModel::load(env, "operator recogniser", path, settings.threads)?;
                    let out = match output {
                        Some(o) => o.clone(),
                        None => m.first_output().to_string(),
                    };
                    (m, out)
                }
                None => (model("mobileface")?, MOBILEFACE_OUTPUT.to_string()),
            };
            Ok(Recognition {
                model,
                output,
                layout: ChipLayout::ArcFace112,
                preset: settings.recogniser_preset,
                weight: 1.0,
            })
        };
        let dlib = || -> Result<Recognition, RuntimeError> {
            Ok(Recognition {
                model: model("dlib-resnet")?,
                output: DLIB_OUTPUT.to_string(),
                layout: ChipLayout::Dlib150,
                preset: RecogniserPreset::Raw,
                weight: 1.0,
            })
        };
        // An operator's recogniser replaces MobileFace and is used alone.
        let recogniser = if settings.recogniser_override.is_some() {
            Recogniser::MobileFace
        } else {
            settings.recogniser
        };
        let recognisers = match recogniser {
            Recogniser::Dlib => vec![dlib()?],
            Recogniser::MobileFace => vec![mobileface()?],
            Recogniser::Fused => vec![
                Recognition {
                    weight: FUSED_DLIB_WEIGHT,
                    ..dlib()?
                },
                Recognition {
                    weight: 1.0 - FUSED_DLIB_WEIGHT,
                    ..mobileface()?
                },
            ],
        };
        Ok(OnnxEngine {
            front: model("blazeface-front")?,
            back: model("blazeface-back")?,
            mesh: model("facemesh")?,
            recognisers,
            recogniser,
            settings,
        })
    }

    /// Letterboxes the image into `size`², runs a BlazeFace model and maps boxes back to the image.
    fn detect_with(
        &self,
        model: &OnnxModel,
        img: &RgbImage,
        size: usize,
        strides: [usize; 2],
    ) -> Result<Vec<Detection>, RuntimeError> {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let scale = size as f32 / w.max(h);
        // Sized by the longer side: both sides end up at most `size`, whatever the image's shape.
        let (nw, nh) = (
            ((w * scale).round() as u32).clamp(1, size as u32),
            ((h * scale).round() as u32).clamp(1, size as u32),
        );
        // Large photos are first box-averaged to about twice the target (one cheap pass), then filtered to it.
        let k = (img.width() / (2 * nw)).min(img.height() / (2 * nh));
        let resized = if k >= 2 {
            let (sw, sh) = (img.width() / k, img.height() / k);
            let half = geometry::box_shrink(img, (0, 0), (sw, sh), k);
            image::imageops::resize(&half, nw, nh, image::imageops::FilterType::Triangle)
        } else {
            image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle)
        };
        let (pad_x, pad_y) = (
            (size as u32 - nw.min(size as u32)) / 2,
            (size as u32 - nh.min(size as u32)) / 2,
        );
        let mut input = vec![-1.0f32; size * size * 3];
        for (x, y, p) in resized.enumerate_pixels() {
            let (ix, iy) = ((x + pad_x) as usize, (y + pad_y) as usize);
            if ix < size && iy < size {
                let o = (iy * size + ix) * 3;
                for c in 0..3 {
                    input[o + c] = f32::from(p.0[c]) / 127.5 - 1.0;
                }
            }
        }
        let out = model.run([1, size, size, 3], &input, &DETECTOR_OUTPUTS)?;
        let dets = detect::decode(
            size,
            [
                (strides[0], 2, &out[0].data, &out[1].data),
                (strides[1], 6, &out[2].data, &out[3].data),
            ],
            self.settings.min_detection_score,
        );
        Ok(detect::nms(dets, self.settings.nms_iou)
            .into_iter()
            .map(|d| d.unletterbox(scale, pad_x as f32, pad_y as f32))
            .collect())
    }

    /// Faces by BlazeFace front (selfie range), falling back to the full-range model.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, RuntimeError> {
        let mut dets = self.detect_with(&self.front, img, 128, [8, 16])?;
        if dets.is_empty() {
            dets = self.detect_with(&self.back, img, 256, [16, 32])?;
        }
        dets.sort_by(|a, b| b.area().total_cmp(&a.area()));
        Ok(dets)
    }

    /// Runs FaceMesh on a square crop of side `side` centred at `centre`, rotated by `angle` (radians) so the eyes
    /// are level; returns landmarks in image pixels and the presence score.
    fn mesh_at(
        &self,
        img: &RgbImage,
        centre: Point,
        side: f32,
        angle: f32,
    ) -> Result<(Vec<[f32; 3]>, f32), RuntimeError> {
        const S: usize = 192;
        let k = side / S as f32;
        let (c, s) = (angle.cos() * k, angle.sin() * k);
        // crop pixel (u, v) → image: centre + R(angle)·((u, v) − S/2)·k
        let to_img = Similarity {
            a: c,
            b: s,
            tx: centre.x - (c * S as f32 / 2.0 - s * S as f32 / 2.0),
            ty: centre.y - (s * S as f32 / 2.0 + c * S as f32 / 2.0),
        };
        let mut input = geometry::warp(img, &to_img, S, S);
        input.iter_mut().for_each(|v| *v /= 255.0);
        let out = self.mesh.run([1, S, S, 3], &input, &MESH_OUTPUTS)?;
        let mesh = out[0]
            .data
            .chunks_exact(3)
            .map(|p| {
                let q = to_img.apply(Point::new(p[0], p[1]));
                [q.x, q.y, p[2] * k]
            })
            .collect();
        Ok((mesh, out[1].data.first().copied().unwrap_or(0.0)))
    }

    /// Landmarks for a detection: a first pass from the detector's box and eyes, a second from the first mesh.
    pub fn landmarks(
        &self,
        img: &RgbImage,
        det: &Detection,
    ) -> Result<(Vec<[f32; 3]>, f32), RuntimeError> {
        let (e0, e1) = (det.keypoints[0], det.keypoints[1]);
        let (l, r) = if e0.x <= e1.x { (e0, e1) } else { (e1, e0) };
        let centre = Point::new(
            (det.bbox[0] + det.bbox[2]) / 2.0,
            (det.bbox[1] + det.bbox[3]) / 2.0,
        );
        let side = det.width().max(det.height()) * 1.5;
        let (mesh, _) = self.mesh_at(img, centre, side, (r.y - l.y).atan2(r.x - l.x))?;
        let (min_x, max_x) = mesh
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
        let (min_y, max_y) = mesh
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
        let centre = Point::new((min_x + max_x) / 2.0, (min_y + max_y) / 2.0);
        let side = (max_x - min_x).max(max_y - min_y) * 1.5;
        let (a, b) = (mesh[33], mesh[263]);
        self.mesh_at(img, centre, side, (b[1] - a[1]).atan2(b[0] - a[0]))
    }

    /// The 112×112 ArcFace-aligned crop (HWC, RGB 0..255) for five points.
    pub fn align(img: &RgbImage, points: &[Point; 5]) -> Option<Vec<f32>> {
        ChipLayout::ArcFace112.align(img, points)
    }

    /// The chip layouts of the active recogniser(s), the first being the one [`Face::chip`] holds.
    pub fn chip_layouts(&self) -> Vec<ChipLayout> {
        self.recognisers.iter().map(|r| r.layout).collect()
    }

    /// The L2-normalised embedding of chips, one per recogniser in [`Self::chip_layouts`] order. With two
    /// recognisers the embedding is `[√w₁·e₁, √w₂·e₂]` (each eᵢ normalised), whose cosine is w₁·cos₁ + w₂·cos₂.
    pub fn embed_chips(&self, chips: &[Vec<f32>]) -> Result<Vec<f32>, RuntimeError> {
        let mut out = Vec::new();
        for (r, chip) in self.recognisers.iter().zip(chips) {
            let side = r.layout.side();
            let input = preprocess(chip, r.preset);
            let o = r
                .model
                .run([1, side, side, 3], &input, &[r.output.as_str()])?;
            let mut v = o.into_iter().next().map(|o| o.data).unwrap_or_default();
            l2_normalise(&mut v);
            if self.recognisers.len() > 1 {
                let k = r.weight.sqrt();
                v.iter_mut().for_each(|x| *x *= k);
            }
            out.extend(v);
        }
        Ok(out)
    }

    /// The L2-normalised embedding of one aligned chip of the first recogniser (single-recogniser engines).
    pub fn embed(&self, chip: &[f32]) -> Result<Vec<f32>, RuntimeError> {
        self.embed_chips(&[chip.to_vec()])
    }

    /// Chips for every active recogniser from FaceMesh landmarks.
    pub fn chips(&self, img: &RgbImage, mesh: &[[f32; 3]]) -> Option<Vec<Vec<f32>>> {
        self.recognisers
            .iter()
            .map(|r| r.layout.align(img, &r.layout.points(mesh)))
            .collect()
    }
}

/// dlib's five points from FaceMesh: outer (263) and inner (362) corner of the image-right eye, outer (33) and
/// inner (133) corner of the image-left eye, base of the nose (2).
pub fn dlib_points(mesh: &[[f32; 3]]) -> [Point; 5] {
    let p = |i: usize| Point::new(mesh[i][0], mesh[i][1]);
    [p(263), p(362), p(33), p(133), p(2)]
}

/// Five points from FaceMesh: eye centres (33/133, 362/263), nose tip (1), mouth corners (61, 291).
pub fn five_points(mesh: &[[f32; 3]]) -> [Point; 5] {
    let p = |i: usize| Point::new(mesh[i][0], mesh[i][1]);
    [p(33).mid(p(133)), p(362).mid(p(263)), p(1), p(61), p(291)]
}

impl FaceEngine for OnnxEngine {
    fn recogniser_id(&self) -> String {
        match &self.settings.recogniser_override {
            Some((path, _)) => format!(
                "operator:{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("model")
            ),
            None => self.recogniser.name().to_string(),
        }
    }

    fn analyze(&self, img: &RgbImage) -> Result<Vec<Face>, RuntimeError> {
        let mut faces = Vec::new();
        for det in self.detect(img)? {
            let (mesh, mesh_score) = self.landmarks(img, &det)?;
            let points = five_points(&mesh);
            let Some(mut chips) = self.chips(img, &mesh) else {
                continue;
            };
            let embedding = self.embed_chips(&chips)?;
            faces.push(Face {
                detection: det,
                mesh,
                mesh_score,
                points,
                embedding,
                chip: chips.swap_remove(0),
            });
        }
        Ok(faces)
    }

    fn recogniser(&self) -> Recogniser {
        self.recogniser
    }
}
