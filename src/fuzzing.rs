//! The entry points of the fuzz targets (`fuzz/`, run with `cargo fuzz`): each takes arbitrary bytes and feeds them
//! to the code that reads them from clients, the way a request would reach it. None of them may panic, abort or
//! hang on any input. The fuzz targets and the corpus replay test (`tests/suite/hardening/fuzz_corpus.rs`) both call
//! these functions, so a crash found by fuzzing stays a regression test once its input is kept under
//! `fuzz/artifacts/<target>/`.
//!
//! Besides "does not crash", a few properties are asserted where they are cheap to state (a signature computed here
//! verifies; a decoded image respects the limits it was decoded under; an envelope is JSON whose node is the node).
use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::NaiveDate;
use image::RgbImage;

use crate::face::engine::{Face, FaceEngine};
use crate::face::geometry::Point;
use crate::face::image::{self as face_image, DecodeLimits};
use crate::face::runtime::RuntimeError;
use crate::protocol::alipay::{self, params, Charset, SignType, SigningKey};
use crate::protocol::aliyun::acs;
use crate::protocol::aliyun::gateway::{self, CloudRequest};
use crate::protocol::aliyun::params as cloud_params;

/// The body of a fuzz target.
pub type Target = fn(&[u8]);

/// Every target: its name (the fuzz target's and the corpus folder's) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("gateway_form", gateway_form),
    ("cloud_signature", cloud_signature),
    ("biz_params", biz_params),
    ("image_gate", image_gate),
    ("video", video),
    ("hosted_upload", hosted_upload),
];

/// A fixed "now" for the clock checks (2026-06-01T00:00:00Z), so an input behaves the same on every run.
const NOW: i64 = 1_780_272_000;
/// The access key secret the cloud signatures are checked with.
pub const CLOUD_SECRET: &str = "fuzz-secret-of-the-access-key";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 1).unwrap_or_default()
}

/// The gateway's key: generated once per process (a 2048-bit key takes a moment).
fn gateway_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("an RSA key"))
}

/// `/gateway.do`: the query string (up to the first newline) and the form body (the rest) split into pairs,
/// decoded in the request charset, the string-to-sign in both forms, the signature and timestamp checks, and the
/// signed reply envelope under the method's node.
pub fn gateway_form(data: &[u8]) {
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&[][..], data),
    };
    let mut pairs = params::split_form(query);
    pairs.extend(params::split_form(body));
    let raw_method = pairs
        .iter()
        .find(|(k, _)| k == b"method")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let key = gateway_key();
    match params::Params::decode(pairs) {
        Ok(p) => {
            let charset = p.charset.unwrap_or(Charset::Utf8);
            let strict = params::sign_content(p.map(), false);
            let with_empty = params::sign_content(p.map(), true);
            assert!(with_empty.len() >= strict.len());
            let sign_type = p
                .get("sign_type")
                .and_then(SignType::parse)
                .unwrap_or(SignType::Rsa2);
            if let Some(sign) = p.get("sign") {
                let public = key.public_key();
                let _ = public.verify(sign_type, &charset.encode(&strict), sign);
                if p.has_empty_values() {
                    let _ = public.verify(sign_type, &charset.encode(&with_empty), sign);
                }
            }
            if let Some(ts) = p.get("timestamp") {
                let _ = crate::protocol::alipay::gateway::timestamp_ok(ts, NOW, 900);
            }
            if let Some(method) = p.get("method") {
                envelope(method, &strict, charset);
            }
        }
        Err(e) => {
            if let Some(method) = raw_method {
                envelope(&method, &format!("{e:?}"), Charset::Utf8);
            }
        }
    }
}

/// The reply envelope with attacker-chosen text in its node; for a method name the gateway would use as a node
/// name, the envelope must be JSON with a signature, whose node is the node sent (in UTF-8; an object in GBK).
fn envelope(method: &str, text: &str, charset: Charset) {
    let plausible = !method.is_empty()
        && method.len() <= 128
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    if !plausible {
        let _ = alipay::response_node_name(method);
        return;
    }
    let node = serde_json::json!({"code": "40002", "sub_msg": text}).to_string();
    let body = alipay::method_envelope(method, &node, gateway_key(), SignType::Rsa2, charset);
    let Some(decoded) = charset.decode(&body) else {
        panic!("an envelope that its own charset cannot decode");
    };
    let v: serde_json::Value = serde_json::from_str(&decoded).expect("the envelope is JSON");
    let name = alipay::response_node_name(method);
    assert!(v.get("sign").is_some_and(serde_json::Value::is_string));
    let sent: serde_json::Value = serde_json::from_str(&node).expect("the node is JSON");
    match charset {
        Charset::Utf8 => assert_eq!(v.get(&name), Some(&sent)),
        // GBK writes what it cannot encode as character references: the node's text may differ, not its shape.
        Charset::Gbk => assert!(v.get(&name).is_some_and(serde_json::Value::is_object)),
    }
}

/// Reads the fuzz input as a request: the method on the first line, the query string on the second, headers
/// (`name: value`) up to an empty line, then the body.
pub fn cloud_request(data: &[u8]) -> CloudRequest {
    let mut rest = data;
    let mut line = || -> Option<String> {
        if rest.is_empty() {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = rest.get(end + 1..).unwrap_or(&[]);
        Some(text)
    };
    let method = line().unwrap_or_default();
    let query = line().unwrap_or_default();
    let mut headers = Vec::new();
    while let Some(h) = line() {
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((&h, ""));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    CloudRequest {
        method,
        query,
        headers,
        body: rest.to_vec(),
    }
}

/// The cloud front door (`/`): the request's pairs, its action, the ACS3 `Authorization` header and canonical
/// request, the RPC string-to-sign, both signature checks, the clock and nonce checks, and the refusals' texts.
pub fn cloud_signature(data: &[u8]) {
    let req = cloud_request(data);
    let mut errors = Vec::new();
    let query = gateway::decode_pairs(req.query.as_bytes()).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let body = gateway::decode_pairs(&req.body).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in query.iter().chain(body.iter()) {
        merged.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if let Some(action) = gateway::action_of(&req) {
        let _ = gateway::plausible_action(&action);
    }
    for nonce in [
        req.header("x-acs-signature-nonce"),
        merged.get("SignatureNonce").cloned(),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = gateway::check_nonce_shape(&nonce) {
            errors.push(e);
        }
    }
    for ts in [req.header("x-acs-date"), merged.get("Timestamp").cloned()]
        .into_iter()
        .flatten()
    {
        let _ = acs::parse_utc(&ts).map(|t| (t - NOW).abs());
    }

    if let Some(header) = req.header("authorization") {
        match acs::parse_authorization(&header) {
            Ok(auth) => {
                assert_eq!(auth.signature.len(), 64);
                let hashed = acs::sha256_hex(&req.body);
                let canonical = acs::acs3_canonical_request(
                    &req.method,
                    &query,
                    &auth.signed_headers,
                    |h| req.header(h),
                    &hashed,
                );
                let string_to_sign = acs::acs3_string_to_sign(&canonical);
                let ours = acs::acs3_signature(CLOUD_SECRET, &string_to_sign);
                assert!(acs::acs3_verify(CLOUD_SECRET, &string_to_sign, &ours));
                if !acs::acs3_verify(CLOUD_SECRET, &string_to_sign, &auth.signature) {
                    errors.push(gateway::GateError::SignatureDoesNotMatch { string_to_sign });
                }
            }
            Err(e) => errors.push(gateway::GateError::IncompleteSignature(e.to_string())),
        }
    }
    let string_to_sign = acs::rpc_string_to_sign(&req.method, &merged);
    let ours = acs::rpc_signature(CLOUD_SECRET, &string_to_sign);
    assert!(acs::rpc_verify(CLOUD_SECRET, &string_to_sign, &ours));
    if let Some(sig) = merged.get("Signature") {
        if !acs::rpc_verify(CLOUD_SECRET, &string_to_sign, sig) {
            errors.push(gateway::GateError::SignatureDoesNotMatch { string_to_sign });
        }
    }
    for e in errors {
        let (status, code, message, _) = e.parts();
        assert!((400..600).contains(&status) && !code.is_empty());
        let _ = serde_json::json!({"Code": code, "Message": message}).to_string();
    }
}

/// `biz_content` of `initialize` (the input as JSON text) and the cloud API's parameters (the input as a form
/// body): every field check, the ID number, the return and callback URLs, the picture sources and their base64.
pub fn biz_params(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let limits = crate::domain::request::Limits {
        max_contrast_picture_bytes: 1024 * 1024,
        today: today(),
    };
    if let Ok(req) = crate::domain::request::parse_initialize(&text, limits) {
        let _ = req.digest(&crate::domain::seal::KeyRing::new(
            crate::domain::seal::DataKey::from_bytes(&[1; 32]),
            vec![],
        ));
        let _ = crate::domain::request::return_url_allowed(&req.return_url, &[]);
        let _ = crate::domain::request::return_url_allowed(
            &req.return_url,
            &[
                "https://m.example.com/".to_string(),
                "alipays://".to_string(),
            ],
        );
    }

    let Ok(pairs) = gateway::decode_pairs(data) else {
        return;
    };
    let mut p: crate::protocol::aliyun::actions::Params = BTreeMap::new();
    for (k, v) in pairs {
        p.entry(k).or_insert(v);
    }
    let _ = cloud_params::outer_order_no(&p);
    let _ = cloud_params::check_model(&p);
    let _ = cloud_params::check_meta_info(&p);
    if let Some(url) = cloud_params::optional(&p, "CallbackUrl") {
        let _ = cloud_params::check_callback_url(url);
    }
    if let Some(url) = cloud_params::optional(&p, "ReturnUrl") {
        let _ = crate::domain::request::return_url_allowed(url, &[]);
    }
    let _ = cloud_params::CertSubject::parse(&p, today());
    for prefix in ["", "Source", "Target"] {
        for names in [cloud_params::SOURCE_NAMES, cloud_params::VIDEO_SOURCE_NAMES] {
            if let Ok(Some(cloud_params::PictureSource::Base64 { name, value })) =
                cloud_params::picture_source(&p, prefix, names)
            {
                if let Ok(bytes) =
                    cloud_params::decode_base64(&name, &value, 1024 * 1024, "the limit")
                {
                    assert!(bytes.len() <= 1024 * 1024);
                    let _ = face_image::inspect(&bytes, DecodeLimits::PICTURE);
                }
            }
        }
    }
}

/// The decode gate: the header check and the decode under each set of limits, what comes out checked against
/// them, and the liveness thumb made from it.
pub fn image_gate(data: &[u8]) {
    for limits in [
        DecodeLimits::FRAME,
        DecodeLimits::PICTURE,
        DecodeLimits::LOCAL_FILE,
    ] {
        let header = face_image::inspect(data, limits);
        let decoded = face_image::decode(data, limits);
        match (&header, &decoded) {
            (Ok(_), Ok(img)) => {
                let (w, h) = img.dimensions();
                assert!(w >= 1 && h >= 1);
                assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
                if let Some(side) = limits.fit_side {
                    assert!(w.max(h) <= side);
                }
                let _ = crate::face::observe::thumb(img);
            }
            // A header refused means no decode; a decode may still fail on a good header (corrupt data).
            (Err(_), Ok(_)) => panic!("decoded an image whose header was refused"),
            _ => {}
        }
    }
}

/// MP4 demux and H.264 decode with the service's limits, and the kept frames checked against them.
pub fn video(data: &[u8]) {
    let limits = crate::media::VideoLimits::default();
    if let Ok(v) = crate::media::decode_video(data, &limits) {
        assert!(!v.frames.is_empty());
        assert!(v.decoded_frames <= limits.max_frames);
        for f in &v.frames {
            let (w, h) = f.image.dimensions();
            assert!(w.max(h) <= limits.max_output_side && w >= 1 && h >= 1);
        }
    }
}

/// A stand-in for the face engine: one face in the middle third of every frame large enough to hold one, with a
/// mesh spread over it, so that everything after the engine (measures, skin colour, the surroundings' shift
/// between frames) runs on real decoded frames.
struct MiddleFace;

impl FaceEngine for MiddleFace {
    fn analyze(&self, img: &RgbImage) -> Result<Vec<Face>, RuntimeError> {
        let (w, h) = (img.width() as f32, img.height() as f32);
        if w < 48.0 || h < 48.0 {
            return Ok(Vec::new());
        }
        let bbox = [w / 3.0, h / 3.0, 2.0 * w / 3.0, 2.0 * h / 3.0];
        let (bw, bh) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
        let at = |fx: f32, fy: f32| Point::new(bbox[0] + fx * bw, bbox[1] + fy * bh);
        let mesh = (0..468)
            .map(|i| {
                let (fx, fy) = ((i % 22) as f32 / 21.0, (i / 22) as f32 / 21.0);
                let p = at(fx, fy);
                [p.x, p.y, 0.0]
            })
            .collect();
        let points = [
            at(0.3, 0.4),
            at(0.7, 0.4),
            at(0.5, 0.6),
            at(0.35, 0.8),
            at(0.65, 0.8),
        ];
        Ok(vec![Face {
            detection: crate::face::detect::Detection {
                bbox,
                score: 0.9,
                keypoints: [
                    points[0],
                    points[1],
                    points[2],
                    at(0.5, 0.8),
                    at(0.0, 0.45),
                    at(1.0, 0.45),
                ],
            },
            mesh,
            mesh_score: 0.9,
            points,
            embedding: vec![1.0 / 128f32.sqrt(); 128],
            chip: Vec::new(),
        }])
    }
}

/// Separates frames in the raw form of [`hosted_upload`]'s input.
pub const FRAME_MARK: &[u8] = b"\n--frame--\n";

/// The hosted page's attempt upload: a JSON body (input starting with `{`) read by the handler's parser, or frames
/// given raw (separated by [`FRAME_MARK`], so the fuzzer can change the images themselves); then what the hosted
/// flow does with the frames: the count, size and time checks, every frame through the decode gate, and each
/// observed in order (with [`MiddleFace`] standing in for the engine).
pub fn hosted_upload(data: &[u8]) {
    let settings = crate::certify::hosted::HostedSettings::default();
    let frames = if data.first() == Some(&b'{') {
        match crate::api::h5::parse_attempt(data) {
            Ok((_, frames)) => frames,
            Err(e) => {
                let _ = (e.code(), crate::api::h5::status(&e), e.messages());
                return;
            }
        }
    } else {
        let mut frames = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let end = rest
                .windows(FRAME_MARK.len())
                .position(|w| w == FRAME_MARK)
                .unwrap_or(rest.len());
            frames.push(crate::certify::hosted::FrameIn {
                t_ms: 125 * frames.len() as u32,
                jpeg: rest[..end].to_vec(),
            });
            rest = rest.get(end + FRAME_MARK.len()..).unwrap_or(&[]);
        }
        frames
    };
    if frames.is_empty()
        || frames.len() > settings.max_frames
        || frames
            .iter()
            .any(|f| f.jpeg.len() > settings.max_frame_bytes)
        || frames.windows(2).any(|w| w[1].t_ms < w[0].t_ms)
    {
        return;
    }
    let limits = DecodeLimits::FRAME.with_max_bytes(settings.max_frame_bytes);
    let Ok(images) = frames
        .iter()
        .map(|f| face_image::decode(&f.jpeg, limits))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let mut prev = None;
    for (img, f) in images.iter().zip(&frames) {
        let (o, thumb) = crate::face::observe::observe(&MiddleFace, img, f.t_ms, prev.as_ref())
            .expect("the stand-in engine does not fail");
        assert_eq!(
            o.faces,
            usize::from(img.width() >= 48 && img.height() >= 48)
        );
        prev = Some(thumb);
    }
}
