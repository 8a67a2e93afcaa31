//! shiren's own reader of dlib's serialised face-descriptor network (`dlib_face_recognition_resnet_model_v1.dat`,
//! CC0, from PyPI `face_recognition_models`) and its conversion to ONNX, so that it runs under ONNX Runtime like
//! every other stage.
//!
//! dlib serialises a network from the loss layer inwards: one version number per wrapper (layer, tag, skip) from
//! the outside in, then the input layer, then each layer's parameters from the input outwards. Tags, skips and the
//! `add_prev` targets are not in the file: they come from the network's C++ type, which [`architecture`] writes
//! down (the ResNet-29 of dlib's `dnn_face_recognition_ex.cpp`: 29 convolutions, 150×150 RGB in, 128 out).
//!
//! Numbers in the file: integers as a control byte (bit 7 = negative, low nibble = byte count) followed by the
//! magnitude little-endian; floats and doubles as an integer mantissa then an integer exponent
//! (`m · 2^e`); strings as a length then bytes; bools as the characters `0`/`1`; tensors as version 2, four
//! dimensions and raw little-endian f32 values.
use std::collections::HashMap;

use super::onnx_proto::{Attr, Model, Node, Tensor, ValueInfo};

/// Why a dlib file could not be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum DlibError {
    #[error("dlib file ends early (at byte {0})")]
    Truncated(usize),
    #[error("dlib file, byte {at}: {message}")]
    Format { at: usize, message: String },
}

/// A reader of dlib's serialisation primitives.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, DlibError> {
        Err(DlibError::Format {
            at: self.at,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DlibError> {
        let s = self
            .bytes
            .get(self.at..self.at + n)
            .ok_or(DlibError::Truncated(self.at))?;
        self.at += n;
        Ok(s)
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// A signed or unsigned integer.
    pub fn int(&mut self) -> Result<i64, DlibError> {
        let control = self.take(1)?[0];
        let size = usize::from(control & 0x0f);
        if size == 0 || size > 8 || control & 0x70 != 0 {
            return self.err(format!("bad integer control byte {control:#04x}"));
        }
        let mut v: u64 = 0;
        for (i, b) in self.take(size)?.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        let v = v as i64;
        Ok(if control & 0x80 != 0 { -v } else { v })
    }

    /// An integer that must equal `expected` (a version number or a known dimension).
    fn expect_int(&mut self, what: &str, expected: i64) -> Result<(), DlibError> {
        let v = self.int()?;
        if v != expected {
            return self.err(format!("{what}: expected {expected}, found {v}"));
        }
        Ok(())
    }

    /// A float or double (`mantissa · 2^exponent`).
    pub fn float(&mut self) -> Result<f64, DlibError> {
        let mantissa = self.int()?;
        let exponent = self.int()?;
        Ok(match exponent {
            32000 => f64::INFINITY,
            32001 => f64::NEG_INFINITY,
            32002 => f64::NAN,
            e => mantissa as f64 * 2f64.powi(e as i32),
        })
    }

    pub fn string(&mut self) -> Result<String, DlibError> {
        let n = self.int()?;
        if !(0..=1 << 20).contains(&n) {
            return self.err(format!("string length {n}"));
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }

    pub fn boolean(&mut self) -> Result<bool, DlibError> {
        match self.take(1)?[0] {
            b'1' => Ok(true),
            b'0' => Ok(false),
            other => self.err(format!("bad bool {other:#04x}")),
        }
    }

    /// A tensor: (num_samples, k, nr, nc) and its values.
    pub fn tensor(&mut self) -> Result<([i64; 4], Vec<f32>), DlibError> {
        self.expect_int("tensor version", 2)?;
        let dims = [self.int()?, self.int()?, self.int()?, self.int()?];
        if dims.iter().any(|d| !(0..=1 << 24).contains(d)) {
            return self.err(format!("tensor dims {dims:?}"));
        }
        let n = dims.iter().product::<i64>() as usize;
        let values = self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok((dims, values))
    }

    /// An alias tensor (a view into a parameter tensor): its dims.
    fn alias(&mut self) -> Result<[i64; 4], DlibError> {
        self.expect_int("alias_tensor version", 1)?;
        Ok([self.int()?, self.int()?, self.int()?, self.int()?])
    }

    fn tag(&mut self, expected: &[&str]) -> Result<String, DlibError> {
        let s = self.string()?;
        if !expected.contains(&s.as_str()) {
            return self.err(format!("expected one of {expected:?}, found {s:?}"));
        }
        Ok(s)
    }
}

/// One element of the network type, from the input outwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// `con<filters, k, k, stride, stride>`.
    Con {
        filters: i64,
        k: i64,
        stride: i64,
    },
    Affine,
    Relu,
    /// `max_pool<3,3,2,2>`.
    MaxPool,
    /// `avg_pool<2,2,2,2>`.
    AvgPool,
    /// `avg_pool_everything`.
    AvgAll,
    /// `add_prev<tag>`: the current tensor plus the tagged one (dlib zero-extends the smaller).
    AddPrev(u8),
    /// `fc_no_bias<outputs>`.
    Fc(i64),
    Tag(u8),
    Skip(u8),
}

impl Item {
    fn is_layer(self) -> bool {
        !matches!(self, Item::Tag(_) | Item::Skip(_))
    }
}

/// dlib's face-recognition ResNet, input to output (`anet_type` of `dnn_face_recognition_ex.cpp`).
pub fn architecture() -> Vec<Item> {
    use Item::*;
    let mut a = vec![
        Con {
            filters: 32,
            k: 7,
            stride: 2,
        },
        Affine,
        Relu,
        MaxPool,
    ];
    let block = |a: &mut Vec<Item>, n: i64, stride: i64| {
        a.extend([
            Con {
                filters: n,
                k: 3,
                stride,
            },
            Affine,
            Relu,
            Con {
                filters: n,
                k: 3,
                stride: 1,
            },
            Affine,
        ]);
    };
    let ares = |a: &mut Vec<Item>, n: i64| {
        a.push(Tag(1));
        block(a, n, 1);
        a.extend([AddPrev(1), Relu]);
    };
    let ares_down = |a: &mut Vec<Item>, n: i64| {
        a.push(Tag(1));
        block(a, n, 2);
        a.extend([Tag(2), Skip(1), AvgPool, AddPrev(2), Relu]);
    };
    for _ in 0..3 {
        ares(&mut a, 32);
    }
    for (n, plain) in [(64, 3), (128, 2), (256, 2), (256, 0)] {
        ares_down(&mut a, n);
        for _ in 0..plain {
            ares(&mut a, n);
        }
    }
    a.extend([AvgAll, Fc(128)]);
    a
}

/// A parsed layer with its parameters.
#[derive(Debug, Clone)]
enum Layer {
    Con {
        filters: usize,
        inputs: usize,
        k: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        weights: Vec<f32>,
        bias: Option<Vec<f32>>,
    },
    Affine {
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    Relu,
    Pool {
        max: bool,
        k: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
    },
    AddPrev,
    Fc {
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
    },
}

/// The parsed network: input normalisation and layers, input to output.
#[derive(Debug, Clone)]
pub struct Network {
    /// Per-channel means subtracted from RGB 0..255 before dividing by 256.
    pub mean_rgb: [f32; 3],
    pub size: usize,
    layers: Vec<Layer>,
    /// The loss layer's distance threshold (dlib's "same person" distance).
    pub distance_threshold: f64,
}

fn usize_of(v: i64) -> usize {
    v.max(0) as usize
}

fn read_layer(r: &mut Reader) -> Result<Layer, DlibError> {
    let s = r.tag(&[
        "con_4",
        "con_5",
        "affine_",
        "affine_2",
        "relu_",
        "max_pool_2",
        "avg_pool_2",
        "add_prev_",
        "fc_2",
        "fc_3",
    ])?;
    Ok(match s.as_str() {
        "con_4" | "con_5" => {
            let (_, params) = r.tensor()?;
            let filters = usize_of(r.int()?);
            let k = [usize_of(r.int()?), usize_of(r.int()?)];
            let stride = [usize_of(r.int()?), usize_of(r.int()?)];
            let pad = [usize_of(r.int()?), usize_of(r.int()?)];
            let f = r.alias()?;
            let b = r.alias()?;
            for _ in 0..4 {
                r.float()?;
            }
            let use_bias = if s == "con_5" { r.boolean()? } else { true };
            let inputs = usize_of(f[1]);
            let nw = filters * inputs * k[0] * k[1];
            if usize_of(f[0]) != filters || params.len() < nw {
                return r.err(format!(
                    "convolution filters {f:?} vs {} params",
                    params.len()
                ));
            }
            let nb = usize_of(b.iter().product());
            let bias = (use_bias && nb == filters && params.len() >= nw + nb)
                .then(|| params[nw..nw + nb].to_vec());
            Layer::Con {
                filters,
                inputs,
                k,
                stride,
                pad,
                weights: params[..nw].to_vec(),
                bias,
            }
        }
        "affine_" | "affine_2" => {
            let (_, params) = r.tensor()?;
            let g = usize_of(r.alias()?.iter().product());
            let b = usize_of(r.alias()?.iter().product());
            let _mode = r.int()?;
            if s == "affine_2" && r.boolean()? {
                return r.err("disabled affine layers are not supported");
            }
            if params.len() < g + b || g != b {
                return r.err("affine parameters do not match their views");
            }
            Layer::Affine {
                gamma: params[..g].to_vec(),
                beta: params[g..g + b].to_vec(),
            }
        }
        "relu_" => Layer::Relu,
        "add_prev_" => Layer::AddPrev,
        "max_pool_2" | "avg_pool_2" => {
            let k = [usize_of(r.int()?), usize_of(r.int()?)];
            let stride = [usize_of(r.int()?), usize_of(r.int()?)];
            let pad = [usize_of(r.int()?), usize_of(r.int()?)];
            Layer::Pool {
                max: s == "max_pool_2",
                k,
                stride,
                pad,
            }
        }
        _ => {
            let outputs = usize_of(r.int()?);
            let inputs = usize_of(r.int()?);
            let (_, params) = r.tensor()?;
            let w = r.alias()?;
            r.alias()?;
            let bias_mode = r.int()?;
            for _ in 0..4 {
                r.float()?;
            }
            if s == "fc_3" {
                r.boolean()?;
            }
            if bias_mode != 1 || usize_of(w[0]) != inputs || params.len() < inputs * outputs {
                return r.err("only fc_no_bias layers are supported");
            }
            Layer::Fc {
                inputs,
                outputs,
                weights: params[..inputs * outputs].to_vec(),
            }
        }
    })
}

fn matches(item: Item, layer: &Layer) -> bool {
    match (item, layer) {
        (
            Item::Con { filters, k, stride },
            Layer::Con {
                filters: f,
                k: kk,
                stride: s,
                ..
            },
        ) => *f as i64 == filters && kk[0] as i64 == k && s[0] as i64 == stride,
        (Item::Affine, Layer::Affine { .. }) | (Item::Relu, Layer::Relu) => true,
        (Item::MaxPool, Layer::Pool { max: true, k, .. }) => k[0] == 3,
        (Item::AvgPool, Layer::Pool { max: false, k, .. }) => k[0] == 2,
        (Item::AvgAll, Layer::Pool { max: false, k, .. }) => k[0] == 0,
        (Item::AddPrev(_), Layer::AddPrev) => true,
        (Item::Fc(n), Layer::Fc { outputs, .. }) => *outputs as i64 == n,
        _ => false,
    }
}

impl Network {
    /// Parses a serialised `loss_metric` network of the [`architecture`] type.
    pub fn parse(bytes: &[u8]) -> Result<Network, DlibError> {
        let arch = architecture();
        let mut r = Reader::new(bytes);
        r.expect_int("add_loss_layer version", 1)?;
        let loss = r.tag(&["loss_metric_", "loss_metric_2"])?;
        let distance_threshold = if loss == "loss_metric_2" {
            r.float()?;
            r.float()?
        } else {
            0.75
        };
        // Version numbers of every wrapper, outside in; the innermost layer holds the input layer.
        let mut input_version = 0;
        for (i, item) in arch.iter().enumerate().rev() {
            if i == 0 {
                input_version = r.int()?;
                if !(2..=3).contains(&input_version) {
                    return r.err(format!("input add_layer version {input_version}"));
                }
            } else if item.is_layer() {
                r.expect_int("add_layer version", 2)?;
            } else {
                r.expect_int("tag/skip version", 1)?;
            }
        }
        r.tag(&["input_rgb_image_sized"])?;
        let mean_rgb = [r.float()? as f32, r.float()? as f32, r.float()? as f32];
        let (nr, nc) = (r.int()?, r.int()?);
        if nr != nc || nr <= 0 {
            return r.err(format!("input size {nr}×{nc}"));
        }
        let mut layers = Vec::new();
        for (i, item) in arch.iter().enumerate().filter(|(_, it)| it.is_layer()) {
            let layer = read_layer(&mut r)?;
            if !matches(*item, &layer) {
                return r.err(format!("layer {i}: expected {item:?}"));
            }
            layers.push(layer);
            for _ in 0..3 {
                r.boolean()?;
            }
            r.tensor()?; // x_grad
            r.tensor()?; // cached_output
            if i == 0 {
                r.tensor()?; // grad_final
                if input_version == 3 {
                    r.int()?; // sample expansion factor
                }
            } else {
                r.tensor()?; // params_grad
            }
        }
        if r.remaining() != 0 {
            return r.err(format!("{} bytes left after the network", r.remaining()));
        }
        Ok(Network {
            mean_rgb,
            size: nr as usize,
            layers,
            distance_threshold,
        })
    }

    /// The ONNX graph: input `chip` [N, size, size, 3] RGB 0..255 (HWC, as the engine's aligned chips), output
    /// `descriptor` [N, 128] (dlib's raw descriptor, not normalised).
    pub fn to_onnx(&self, graph_name: &str) -> Result<Model, DlibError> {
        let bad = |m: &str| DlibError::Format {
            at: 0,
            message: m.to_string(),
        };
        let mut b = GraphBuilder::default();
        let n = self.size as i64;
        b.init(Tensor::float("mean_rgb", vec![3], &self.mean_rgb));
        b.init(Tensor::float("inv_256", vec![], &[1.0 / 256.0]));
        let x = b.node(
            "centre",
            "Sub",
            vec!["chip".into(), "mean_rgb".into()],
            vec![],
        );
        let x = b.node("scale", "Mul", vec![x, "inv_256".into()], vec![]);
        let mut cur = b.node(
            "nchw",
            "Transpose",
            vec![x],
            vec![("perm".into(), Attr::Ints(vec![0, 3, 1, 2]))],
        );
        let mut shape = [3usize, self.size, self.size];
        let mut tags: HashMap<u8, (String, [usize; 3])> = HashMap::new();
        let mut layers = self.layers.iter();
        for (i, item) in architecture().into_iter().enumerate() {
            let name = format!("l{i}");
            match item {
                Item::Tag(t) => {
                    tags.insert(t, (cur.clone(), shape));
                    continue;
                }
                Item::Skip(t) => {
                    (cur, shape) = tags
                        .get(&t)
                        .cloned()
                        .ok_or_else(|| bad("skip to unknown tag"))?;
                    continue;
                }
                _ => {}
            }
            let layer = layers
                .next()
                .ok_or_else(|| bad("fewer layers than the architecture"))?;
            match (item, layer) {
                (
                    _,
                    Layer::Con {
                        filters,
                        inputs,
                        k,
                        stride,
                        pad,
                        weights,
                        bias,
                    },
                ) => {
                    if *inputs != shape[0] {
                        return Err(bad(&format!(
                            "layer {i}: {inputs} inputs for {} channels",
                            shape[0]
                        )));
                    }
                    let w = format!("{name}_w");
                    b.init(Tensor::float(
                        &w,
                        vec![*filters as i64, *inputs as i64, k[0] as i64, k[1] as i64],
                        weights,
                    ));
                    let mut ins = vec![cur, w];
                    if let Some(bias) = bias {
                        let bn = format!("{name}_b");
                        b.init(Tensor::float(&bn, vec![*filters as i64], bias));
                        ins.push(bn);
                    }
                    cur = b.node(
                        &name,
                        "Conv",
                        ins,
                        vec![
                            (
                                "kernel_shape".into(),
                                Attr::Ints(vec![k[0] as i64, k[1] as i64]),
                            ),
                            (
                                "strides".into(),
                                Attr::Ints(vec![stride[0] as i64, stride[1] as i64]),
                            ),
                            (
                                "pads".into(),
                                Attr::Ints(vec![
                                    pad[0] as i64,
                                    pad[1] as i64,
                                    pad[0] as i64,
                                    pad[1] as i64,
                                ]),
                            ),
                        ],
                    );
                    shape = [
                        *filters,
                        out_dim(shape[1], k[0], stride[0], pad[0]),
                        out_dim(shape[2], k[1], stride[1], pad[1]),
                    ];
                }
                (_, Layer::Affine { gamma, beta }) => {
                    let c = gamma.len() as i64;
                    if gamma.len() != shape[0] {
                        return Err(bad(&format!("layer {i}: affine over {c} channels")));
                    }
                    let (g, bt) = (format!("{name}_gamma"), format!("{name}_beta"));
                    b.init(Tensor::float(&g, vec![1, c, 1, 1], gamma));
                    b.init(Tensor::float(&bt, vec![1, c, 1, 1], beta));
                    let m = b.node(&format!("{name}_mul"), "Mul", vec![cur, g], vec![]);
                    cur = b.node(&name, "Add", vec![m, bt], vec![]);
                }
                (_, Layer::Relu) => cur = b.node(&name, "Relu", vec![cur], vec![]),
                (Item::AvgAll, Layer::Pool { .. }) => {
                    cur = b.node(&name, "GlobalAveragePool", vec![cur], vec![]);
                    shape = [shape[0], 1, 1];
                }
                (
                    _,
                    Layer::Pool {
                        max,
                        k,
                        stride,
                        pad,
                    },
                ) => {
                    if !*max && pad.iter().any(|p| *p != 0) {
                        return Err(bad("padded average pooling is not supported"));
                    }
                    cur = b.node(
                        &name,
                        if *max { "MaxPool" } else { "AveragePool" },
                        vec![cur],
                        vec![
                            (
                                "kernel_shape".into(),
                                Attr::Ints(vec![k[0] as i64, k[1] as i64]),
                            ),
                            (
                                "strides".into(),
                                Attr::Ints(vec![stride[0] as i64, stride[1] as i64]),
                            ),
                            (
                                "pads".into(),
                                Attr::Ints(vec![
                                    pad[0] as i64,
                                    pad[1] as i64,
                                    pad[0] as i64,
                                    pad[1] as i64,
                                ]),
                            ),
                        ],
                    );
                    shape = [
                        shape[0],
                        out_dim(shape[1], k[0], stride[0], pad[0]),
                        out_dim(shape[2], k[1], stride[1], pad[1]),
                    ];
                }
                (Item::AddPrev(t), Layer::AddPrev) => {
                    let (other, oshape) = tags
                        .get(&t)
                        .cloned()
                        .ok_or_else(|| bad("add_prev of unknown tag"))?;
                    let target = [
                        shape[0].max(oshape[0]),
                        shape[1].max(oshape[1]),
                        shape[2].max(oshape[2]),
                    ];
                    let a = b.zero_extend(&format!("{name}_a"), cur, shape, target);
                    let o = b.zero_extend(&format!("{name}_b"), other, oshape, target);
                    cur = b.node(&name, "Add", vec![a, o], vec![]);
                    shape = target;
                }
                (
                    _,
                    Layer::Fc {
                        inputs,
                        outputs,
                        weights,
                    },
                ) => {
                    if *inputs != shape.iter().product::<usize>() {
                        return Err(bad("fc inputs do not match"));
                    }
                    let f = b.node(
                        &format!("{name}_flat"),
                        "Flatten",
                        vec![cur],
                        vec![("axis".into(), Attr::Int(1))],
                    );
                    let w = format!("{name}_w");
                    b.init(Tensor::float(
                        &w,
                        vec![*inputs as i64, *outputs as i64],
                        weights,
                    ));
                    cur = b.node(&name, "MatMul", vec![f, w], vec![]);
                    shape = [*outputs, 1, 1];
                }
                (_, Layer::AddPrev) => return Err(bad("add_prev without a tag")),
            }
        }
        b.node("descriptor", "Identity", vec![cur], vec![]);
        Ok(Model {
            graph_name: graph_name.to_string(),
            opset: 13,
            nodes: b.nodes,
            initializers: b.initializers,
            inputs: vec![ValueInfo {
                name: "chip".into(),
                dims: Some(vec![None, Some(n), Some(n), Some(3)]),
            }],
            outputs: vec![ValueInfo {
                name: "descriptor".into(),
                dims: Some(vec![None, Some(shape[0] as i64)]),
            }],
            metadata: vec![(
                "converted_by".into(),
                "shiren dlib converter (dlib_face_recognition_resnet_model_v1)".into(),
            )],
        })
    }
}

/// Output size of a convolution or pooling window (dlib and ONNX both round down).
fn out_dim(input: usize, k: usize, stride: usize, pad: usize) -> usize {
    (input + 2 * pad).saturating_sub(k) / stride.max(1) + 1
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<Node>,
    initializers: Vec<Tensor>,
}

impl GraphBuilder {
    fn init(&mut self, t: Tensor) {
        self.initializers.push(t);
    }

    fn node(
        &mut self,
        name: &str,
        op: &str,
        inputs: Vec<String>,
        attrs: Vec<(String, Attr)>,
    ) -> String {
        self.nodes.push(Node {
            name: name.to_string(),
            op_type: op.to_string(),
            inputs,
            outputs: vec![name.to_string()],
            attrs,
        });
        name.to_string()
    }

    /// Pads an NCHW tensor with zeros at the end of C, H and W up to `target` (dlib's `add_prev` semantics).
    fn zero_extend(
        &mut self,
        name: &str,
        x: String,
        shape: [usize; 3],
        target: [usize; 3],
    ) -> String {
        if shape == target {
            return x;
        }
        let pads: Vec<i64> = [0, 0, 0, 0, 0]
            .into_iter()
            .chain((0..3).map(|i| (target[i] - shape[i]) as i64))
            .collect();
        let p = format!("{name}_pads");
        self.init(Tensor::int64(&p, vec![8], &pads));
        self.node(
            name,
            "Pad",
            vec![x, p],
            vec![("mode".into(), Attr::Str("constant".into()))],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives() {
        // 300 = 0x012c: two bytes; −5: sign bit; 0.6 as dlib writes it (mantissa 0x99999a, exponent −24).
        let bytes = [
            0x02, 0x2c, 0x01, 0x81, 0x05, 0x03, 0x9a, 0x99, 0x99, 0x81, 0x18, 0x01, 0x02, b'h',
            b'i', b'1',
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.int().unwrap(), 300);
        assert_eq!(r.int().unwrap(), -5);
        assert!((r.float().unwrap() - 0.6).abs() < 1e-7);
        assert_eq!(r.string().unwrap(), "hi");
        assert!(r.boolean().unwrap());
        assert_eq!(r.remaining(), 0);
        assert!(matches!(r.int(), Err(DlibError::Truncated(_))));
        assert!(Reader::new(&[0x00]).int().is_err());
    }

    #[test]
    fn architecture_has_dlibs_29_convolutions_and_shapes() {
        let a = architecture();
        let convs = a.iter().filter(|i| matches!(i, Item::Con { .. })).count();
        assert_eq!(convs, 29);
        assert_eq!(a.iter().filter(|i| matches!(i, Item::AvgPool)).count(), 4);
        // 150 → 72 (7×7/2) → 35 (max 3/2) → 17 → 8 → 3 (the pooled branch: 4) → 1 (pooled: 2).
        assert_eq!(out_dim(150, 7, 2, 0), 72);
        assert_eq!(out_dim(72, 3, 2, 0), 35);
        assert_eq!(out_dim(8, 3, 2, 0), 3);
        assert_eq!(out_dim(8, 2, 2, 0), 4);
    }
}
