//! shiren's own converter from TensorFlow.js graph models (`model.json` + weight shards) to ONNX.
//!
//! The MediaPipe-derived face models we provision (BlazeFace, FaceMesh, Iris, MobileFace) use a small set of TF ops;
//! this converts exactly those, keeping tensors in TF's NHWC layout and wrapping convolutions and pools in transposes
//! (ONNX Runtime's optimiser removes the redundant pairs). It replaces a 2 GB TensorFlow + tf2onnx step.
use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;

use super::onnx_proto::{Attr, Model, Node, Tensor, ValueInfo};

/// Why a model could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("model.json is not a TF.js graph model: {0}")]
    Format(String),
    #[error("weight shard {0}: {1}")]
    Shard(String, std::io::Error),
    #[error("weights are shorter than the manifest says")]
    ShortWeights,
    #[error("node {node}: {message}")]
    Node { node: String, message: String },
}

fn node_err(node: &str, message: impl Into<String>) -> ConvertError {
    ConvertError::Node {
        node: node.to_string(),
        message: message.into(),
    }
}

/// A constant from the weight manifest, dequantised.
#[derive(Clone, Debug)]
enum Const {
    F32(Vec<i64>, Vec<f32>),
    I32(Vec<i64>, Vec<i32>),
}

struct TfNode {
    name: String,
    op: String,
    inputs: Vec<String>,
    attr: Value,
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let frac = u32::from(bits & 0x3ff);
    let v = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: frac × 2^-24, exact in f32.
            let magnitude = f as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(v)
}

fn read_weights(
    manifest: &Value,
    read_shard: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
) -> Result<HashMap<String, Const>, ConvertError> {
    let groups = manifest
        .as_array()
        .ok_or_else(|| ConvertError::Format("weightsManifest".into()))?;
    let mut out = HashMap::new();
    for group in groups {
        let mut bytes = Vec::new();
        for p in group["paths"]
            .as_array()
            .ok_or_else(|| ConvertError::Format("paths".into()))?
        {
            let p = p
                .as_str()
                .ok_or_else(|| ConvertError::Format("path".into()))?;
            bytes.extend(read_shard(p).map_err(|e| ConvertError::Shard(p.to_string(), e))?);
        }
        let mut at = 0usize;
        for w in group["weights"]
            .as_array()
            .ok_or_else(|| ConvertError::Format("weights".into()))?
        {
            let name = w["name"]
                .as_str()
                .ok_or_else(|| ConvertError::Format("weight name".into()))?;
            let shape: Vec<i64> = w["shape"]
                .as_array()
                .ok_or_else(|| ConvertError::Format("weight shape".into()))?
                .iter()
                .map(|d| d.as_i64().unwrap_or(0))
                .collect();
            let count = shape.iter().product::<i64>().max(0) as usize;
            let dtype = w["dtype"].as_str().unwrap_or("");
            let q = &w["quantization"];
            let take = |n: usize, at: &mut usize| -> Result<&[u8], ConvertError> {
                let s = bytes.get(*at..*at + n).ok_or(ConvertError::ShortWeights)?;
                *at += n;
                Ok(s)
            };
            let value = match (dtype, q["dtype"].as_str()) {
                ("float32", None) => Const::F32(
                    shape,
                    take(count * 4, &mut at)?
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                ("int32", None) => Const::I32(
                    shape,
                    take(count * 4, &mut at)?
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                ),
                ("float32", Some("float16")) => Const::F32(
                    shape,
                    take(count * 2, &mut at)?
                        .chunks_exact(2)
                        .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                        .collect(),
                ),
                ("float32", Some(qd @ ("uint8" | "uint16"))) => {
                    let scale = q["scale"].as_f64().unwrap_or(1.0) as f32;
                    let min = q["min"].as_f64().unwrap_or(0.0) as f32;
                    let width = if qd == "uint8" { 1 } else { 2 };
                    let raw = take(count * width, &mut at)?;
                    let vals = if width == 1 {
                        raw.iter().map(|b| f32::from(*b) * scale + min).collect()
                    } else {
                        raw.chunks_exact(2)
                            .map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])) * scale + min)
                            .collect()
                    };
                    Const::F32(shape, vals)
                }
                (d, q) => {
                    return Err(ConvertError::Format(format!(
                        "weight {name}: dtype {d} quantised as {q:?}"
                    )))
                }
            };
            out.insert(name.to_string(), value);
        }
    }
    Ok(out)
}

fn attr_str(attr: &Value, key: &str) -> Option<String> {
    attr[key]["s"]
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn attr_ints(attr: &Value, key: &str) -> Vec<i64> {
    attr[key]["list"]["i"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_i64()))
                .collect()
        })
        .unwrap_or_default()
}

fn attr_strs(attr: &Value, key: &str) -> Vec<String> {
    attr[key]["list"]["s"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| B64.decode(s).ok()))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

struct Builder<'a> {
    consts: &'a HashMap<String, Const>,
    nodes: Vec<Node>,
    initializers: Vec<Tensor>,
    added: HashSet<String>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        name: String,
        op: &str,
        inputs: Vec<String>,
        attrs: Vec<(String, Attr)>,
    ) -> String {
        self.nodes.push(Node {
            name: name.clone(),
            op_type: op.to_string(),
            inputs,
            outputs: vec![name.clone()],
            attrs,
        });
        name
    }

    fn konst(&self, node: &str, name: &str) -> Result<&Const, ConvertError> {
        self.consts
            .get(name)
            .ok_or_else(|| node_err(node, format!("input {name} must be a constant")))
    }

    /// A tensor operand: a constant becomes an initializer (once), anything else is a node output.
    fn operand(&mut self, name: &str) -> String {
        if let Some(c) = self.consts.get(name) {
            if self.added.insert(name.to_string()) {
                self.initializers.push(match c {
                    Const::F32(s, v) => Tensor::float(name, s.clone(), v),
                    Const::I32(s, v) => Tensor::int64(
                        name,
                        s.clone(),
                        &v.iter().map(|x| i64::from(*x)).collect::<Vec<_>>(),
                    ),
                });
            }
        }
        name.to_string()
    }

    fn transpose(&mut self, name: String, input: String, perm: [i64; 4]) -> String {
        self.push(
            name,
            "Transpose",
            vec![input],
            vec![("perm".into(), Attr::Ints(perm.to_vec()))],
        )
    }

    fn pad_attrs(&self, node: &TfNode) -> Result<Vec<(String, Attr)>, ConvertError> {
        match attr_str(&node.attr, "padding").as_deref() {
            Some("SAME") => Ok(vec![("auto_pad".into(), Attr::Str("SAME_UPPER".into()))]),
            Some("VALID") => Ok(vec![("auto_pad".into(), Attr::Str("VALID".into()))]),
            Some("EXPLICIT") => {
                let p = attr_ints(&node.attr, "explicit_paddings");
                if p.len() != 8 {
                    return Err(node_err(&node.name, "explicit_paddings must have 8 values"));
                }
                Ok(vec![(
                    "pads".into(),
                    Attr::Ints(vec![p[2], p[4], p[3], p[5]]),
                )])
            }
            other => Err(node_err(
                &node.name,
                format!("padding {other:?} is not supported"),
            )),
        }
    }

    /// NHWC conv (regular or depthwise) with optional bias: transpose in, Conv, transpose out.
    fn conv(
        &mut self,
        node: &TfNode,
        depthwise: bool,
        bias: Option<&str>,
    ) -> Result<String, ConvertError> {
        let Const::F32(fshape, f) = self.konst(&node.name, &node.inputs[1])?.clone() else {
            return Err(node_err(&node.name, "filter must be float"));
        };
        if fshape.len() != 4 {
            return Err(node_err(&node.name, "filter must be 4-D"));
        }
        let (kh, kw, cin, cm) = (
            fshape[0] as usize,
            fshape[1] as usize,
            fshape[2] as usize,
            fshape[3] as usize,
        );
        // TF filters are HWIO (regular) or HWCM (depthwise); ONNX wants OIHW with group = C for depthwise.
        let (out_c, in_c, group) = if depthwise {
            (cin * cm, 1, cin)
        } else {
            (cm, cin, 1)
        };
        let mut w = vec![0f32; out_c * in_c * kh * kw];
        for y in 0..kh {
            for x in 0..kw {
                for i in 0..cin {
                    for o in 0..cm {
                        let src = f[((y * kw + x) * cin + i) * cm + o];
                        let (oc, ic) = if depthwise { (i * cm + o, 0) } else { (o, i) };
                        w[((oc * in_c + ic) * kh + y) * kw + x] = src;
                    }
                }
            }
        }
        let wname = format!("{}__w", node.name);
        self.initializers.push(Tensor::float(
            &wname,
            vec![out_c as i64, in_c as i64, kh as i64, kw as i64],
            &w,
        ));
        let mut inputs = vec![
            self.transpose(
                format!("{}__nchw", node.name),
                node.inputs[0].clone(),
                [0, 3, 1, 2],
            ),
            wname,
        ];
        if let Some(b) = bias {
            inputs.push(self.operand(b));
        }
        let strides = attr_ints(&node.attr, "strides");
        let dil = attr_ints(&node.attr, "dilations");
        let mut attrs = self.pad_attrs(node)?;
        attrs.push((
            "kernel_shape".into(),
            Attr::Ints(vec![kh as i64, kw as i64]),
        ));
        attrs.push((
            "strides".into(),
            Attr::Ints(if strides.len() == 4 {
                vec![strides[1], strides[2]]
            } else {
                vec![1, 1]
            }),
        ));
        attrs.push((
            "dilations".into(),
            Attr::Ints(if dil.len() == 4 {
                vec![dil[1], dil[2]]
            } else {
                vec![1, 1]
            }),
        ));
        attrs.push(("group".into(), Attr::Int(group as i64)));
        let c = self.push(format!("{}__conv", node.name), "Conv", inputs, attrs);
        Ok(self.transpose(format!("{}__nhwc", node.name), c, [0, 2, 3, 1]))
    }

    fn convert(&mut self, node: &TfNode) -> Result<(), ConvertError> {
        let n = &node.name;
        let out = |suffix: &str| format!("{n}{suffix}");
        match node.op.as_str() {
            "Const" | "Placeholder" => {}
            "Identity" => {
                let i = self.operand(&node.inputs[0]);
                self.push(n.clone(), "Identity", vec![i], vec![]);
            }
            "Conv2D" | "DepthwiseConv2dNative" => {
                let y = self.conv(node, node.op == "DepthwiseConv2dNative", None)?;
                self.push(n.clone(), "Identity", vec![y], vec![]);
            }
            "_FusedConv2D" | "FusedDepthwiseConv2dNative" => {
                let fused = attr_strs(&node.attr, "fused_ops");
                let bias = match fused.first().map(String::as_str) {
                    Some("BiasAdd") => Some(
                        node.inputs
                            .get(2)
                            .ok_or_else(|| node_err(n, "missing bias"))?
                            .clone(),
                    ),
                    None => None,
                    Some(other) => {
                        return Err(node_err(n, format!("fused op {other} is not supported")))
                    }
                };
                let y = self.conv(
                    node,
                    node.op == "FusedDepthwiseConv2dNative",
                    bias.as_deref(),
                )?;
                match fused.get(1).map(String::as_str) {
                    None => {
                        self.push(n.clone(), "Identity", vec![y], vec![]);
                    }
                    Some("Relu") => {
                        self.push(n.clone(), "Relu", vec![y], vec![]);
                    }
                    Some("Relu6") => {
                        let lo = self.scalar(&out("__zero"), 0.0);
                        let hi = self.scalar(&out("__six"), 6.0);
                        self.push(n.clone(), "Clip", vec![y, lo, hi], vec![]);
                    }
                    Some("Prelu") => {
                        let alpha = self.operand(
                            node.inputs
                                .get(3)
                                .ok_or_else(|| node_err(n, "missing prelu alpha"))?,
                        );
                        self.push(n.clone(), "PRelu", vec![y, alpha], vec![]);
                    }
                    Some(other) => {
                        return Err(node_err(
                            n,
                            format!("fused activation {other} is not supported"),
                        ))
                    }
                }
            }
            "AddV2" | "Add" | "Sub" | "Mul" | "Maximum" | "Minimum" | "Prelu" => {
                let op = match node.op.as_str() {
                    "AddV2" | "Add" => "Add",
                    "Sub" => "Sub",
                    "Mul" => "Mul",
                    "Maximum" => "Max",
                    "Minimum" => "Min",
                    _ => "PRelu",
                };
                let a = self.operand(&node.inputs[0]);
                let b = self.operand(&node.inputs[1]);
                self.push(n.clone(), op, vec![a, b], vec![]);
            }
            "Relu" | "Sigmoid" | "Tanh" => {
                let i = self.operand(&node.inputs[0]);
                self.push(n.clone(), &node.op, vec![i], vec![]);
            }
            "Pad" => {
                let Const::I32(_, p) = self.konst(n, &node.inputs[1])?.clone() else {
                    return Err(node_err(n, "paddings must be int32"));
                };
                let rank = p.len() / 2;
                let pads: Vec<i64> = (0..rank)
                    .map(|i| i64::from(p[2 * i]))
                    .chain((0..rank).map(|i| i64::from(p[2 * i + 1])))
                    .collect();
                let pname = out("__pads");
                self.initializers
                    .push(Tensor::int64(&pname, vec![pads.len() as i64], &pads));
                let i = self.operand(&node.inputs[0]);
                self.push(
                    n.clone(),
                    "Pad",
                    vec![i, pname],
                    vec![("mode".into(), Attr::Str("constant".into()))],
                );
            }
            "MaxPool" | "AvgPool" => {
                let k = attr_ints(&node.attr, "ksize");
                let s = attr_ints(&node.attr, "strides");
                if k.len() != 4 || s.len() != 4 {
                    return Err(node_err(n, "ksize and strides must have 4 values"));
                }
                let mut attrs = self.pad_attrs(node)?;
                attrs.push(("kernel_shape".into(), Attr::Ints(vec![k[1], k[2]])));
                attrs.push(("strides".into(), Attr::Ints(vec![s[1], s[2]])));
                let t = self.transpose(out("__nchw"), node.inputs[0].clone(), [0, 3, 1, 2]);
                let op = if node.op == "MaxPool" {
                    "MaxPool"
                } else {
                    "AveragePool"
                };
                let p = self.push(out("__pool"), op, vec![t], attrs);
                self.transpose(n.clone(), p, [0, 2, 3, 1]);
            }
            "Reshape" => {
                let Const::I32(_, shape) = self.konst(n, &node.inputs[1])?.clone() else {
                    return Err(node_err(n, "shape must be int32"));
                };
                let sname = out("__shape");
                self.initializers.push(Tensor::int64(
                    &sname,
                    vec![shape.len() as i64],
                    &shape.iter().map(|v| i64::from(*v)).collect::<Vec<_>>(),
                ));
                let i = self.operand(&node.inputs[0]);
                self.push(n.clone(), "Reshape", vec![i, sname], vec![]);
            }
            "MatMul" => {
                let a = self.operand(&node.inputs[0]);
                let transpose_b = node.attr["transpose_b"]["b"].as_bool().unwrap_or(false);
                let b = match (self.consts.get(&node.inputs[1]), transpose_b) {
                    (Some(Const::F32(s, v)), true) if s.len() == 2 => {
                        let (r, c) = (s[0] as usize, s[1] as usize);
                        let t: Vec<f32> = (0..c * r).map(|i| v[(i % r) * c + i / r]).collect();
                        let name = out("__bt");
                        self.initializers
                            .push(Tensor::float(&name, vec![s[1], s[0]], &t));
                        name
                    }
                    (_, false) => self.operand(&node.inputs[1]),
                    _ => return Err(node_err(n, "transpose_b needs a constant 2-D matrix")),
                };
                if node.attr["transpose_a"]["b"].as_bool().unwrap_or(false) {
                    return Err(node_err(n, "transpose_a is not supported"));
                }
                self.push(n.clone(), "MatMul", vec![a, b], vec![]);
            }
            "ConcatV2" => {
                let (values, axis) = node.inputs.split_at(node.inputs.len() - 1);
                let Const::I32(_, ax) = self.konst(n, &axis[0])?.clone() else {
                    return Err(node_err(n, "axis must be int32"));
                };
                let inputs = values.iter().map(|v| self.operand(v)).collect();
                self.push(
                    n.clone(),
                    "Concat",
                    inputs,
                    vec![("axis".into(), Attr::Int(i64::from(ax[0])))],
                );
            }
            other => return Err(node_err(n, format!("op {other} is not supported"))),
        }
        Ok(())
    }

    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.initializers.push(Tensor::float(name, vec![], &[v]));
        name.to_string()
    }
}

/// Converts a TF.js graph model. `read_shard` returns the bytes of a weight file named in the manifest.
pub fn convert(
    model_json: &[u8],
    read_shard: &dyn Fn(&str) -> std::io::Result<Vec<u8>>,
    graph_name: &str,
) -> Result<Model, ConvertError> {
    let root: Value =
        serde_json::from_slice(model_json).map_err(|e| ConvertError::Format(e.to_string()))?;
    let consts = read_weights(&root["weightsManifest"], read_shard)?;
    let topo = root["modelTopology"]["node"]
        .as_array()
        .ok_or_else(|| ConvertError::Format("modelTopology.node".into()))?;
    let nodes: Vec<TfNode> = topo
        .iter()
        .map(|n| TfNode {
            name: n["name"].as_str().unwrap_or("").to_string(),
            op: n["op"].as_str().unwrap_or("").to_string(),
            inputs: n["input"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.as_str())
                        .filter(|i| !i.starts_with('^'))
                        .map(|i| i.strip_suffix(":0").unwrap_or(i).to_string())
                        .collect()
                })
                .unwrap_or_default(),
            attr: n["attr"].clone(),
        })
        .collect();
    let mut b = Builder {
        consts: &consts,
        nodes: Vec::new(),
        initializers: Vec::new(),
        added: HashSet::new(),
    };
    let mut inputs = Vec::new();
    let by_name: HashMap<&str, &TfNode> = nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    // Topological order: TF.js files are usually ordered already, but do not rely on it.
    let mut done: HashSet<&str> = HashSet::new();
    let mut order = Vec::new();
    fn visit<'n>(
        n: &'n TfNode,
        by: &HashMap<&str, &'n TfNode>,
        done: &mut HashSet<&'n str>,
        order: &mut Vec<&'n TfNode>,
        depth: usize,
    ) -> Result<(), ConvertError> {
        if done.contains(n.name.as_str()) {
            return Ok(());
        }
        if depth > 10_000 {
            return Err(node_err(&n.name, "graph too deep or cyclic"));
        }
        for i in &n.inputs {
            let dep = by
                .get(i.as_str())
                .ok_or_else(|| node_err(&n.name, format!("unknown input {i}")))?;
            visit(dep, by, done, order, depth + 1)?;
        }
        done.insert(n.name.as_str());
        order.push(n);
        Ok(())
    }
    for n in &nodes {
        visit(n, &by_name, &mut done, &mut order, 0)?;
    }
    for n in &order {
        if n.op == "Placeholder" {
            let dims = n.attr["shape"]["shape"]["dim"].as_array().map(|d| {
                d.iter()
                    .map(|x| {
                        x["size"]
                            .as_str()
                            .and_then(|s| s.parse::<i64>().ok())
                            .or(x["size"].as_i64())
                            .filter(|v| *v >= 0)
                    })
                    .collect()
            });
            inputs.push(ValueInfo {
                name: n.name.clone(),
                dims,
            });
        }
        b.convert(n)?;
    }
    let consumed: HashSet<&str> = nodes
        .iter()
        .flat_map(|n| n.inputs.iter().map(String::as_str))
        .collect();
    let outputs = nodes
        .iter()
        .filter(|n| n.op != "Const" && n.op != "Placeholder" && !consumed.contains(n.name.as_str()))
        .map(|n| ValueInfo {
            name: n.name.clone(),
            dims: None,
        })
        .collect();
    Ok(Model {
        graph_name: graph_name.to_string(),
        opset: 13,
        nodes: b.nodes,
        initializers: b.initializers,
        inputs,
        outputs,
        metadata: vec![("converted_by".into(), "shiren tfjs converter".into())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!((f16_to_f32(0x0001) - 5.960_464_5e-8).abs() < 1e-12);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
