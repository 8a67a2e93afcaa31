//! A minimal ONNX protobuf writer: just the messages a converted feed-forward graph needs
//! (model, graph, node, attribute, tensor, value info), encoded by hand in the protobuf wire format.

/// Protobuf wire-format writer.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }
    fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }
    fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    fn message(&mut self, field: u32, m: Writer) {
        self.bytes(field, &m.0);
    }
}

/// ONNX tensor element types used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    Float = 1,
    Int64 = 7,
}

/// A constant tensor (initializer or attribute value).
#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub dims: Vec<i64>,
    pub data_type: DataType,
    /// Little-endian element bytes.
    pub raw: Vec<u8>,
}

impl Tensor {
    pub fn float(name: &str, dims: Vec<i64>, values: &[f32]) -> Tensor {
        Tensor {
            name: name.to_string(),
            dims,
            data_type: DataType::Float,
            raw: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn int64(name: &str, dims: Vec<i64>, values: &[i64]) -> Tensor {
        Tensor {
            name: name.to_string(),
            dims,
            data_type: DataType::Int64,
            raw: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    fn encode(&self) -> Writer {
        let mut w = Writer::default();
        for d in &self.dims {
            w.int(1, *d);
        }
        w.int(2, self.data_type as i64);
        w.string(8, &self.name);
        w.bytes(9, &self.raw);
        w
    }
}

/// A node attribute.
#[derive(Clone, Debug)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(String),
}

/// A graph node.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<(String, Attr)>,
}

impl Node {
    fn encode(&self) -> Writer {
        let mut w = Writer::default();
        for i in &self.inputs {
            w.string(1, i);
        }
        for o in &self.outputs {
            w.string(2, o);
        }
        w.string(3, &self.name);
        w.string(4, &self.op_type);
        for (name, a) in &self.attrs {
            let mut aw = Writer::default();
            aw.string(1, name);
            match a {
                Attr::Float(f) => {
                    aw.float(2, *f);
                    aw.int(20, 1);
                }
                Attr::Int(i) => {
                    aw.int(3, *i);
                    aw.int(20, 2);
                }
                Attr::Str(s) => {
                    aw.string(4, s);
                    aw.int(20, 3);
                }
                Attr::Ints(v) => {
                    for i in v {
                        aw.int(8, *i);
                    }
                    aw.int(20, 7);
                }
            }
            w.message(5, aw);
        }
        w
    }
}

/// A graph input or output: float tensor with a shape whose unknown dims are named.
#[derive(Clone, Debug)]
pub struct ValueInfo {
    pub name: String,
    /// `None` for a dimension known only at run time.
    pub dims: Option<Vec<Option<i64>>>,
}

impl ValueInfo {
    fn encode(&self) -> Writer {
        let mut tensor = Writer::default();
        tensor.int(1, DataType::Float as i64);
        if let Some(dims) = &self.dims {
            let mut shape = Writer::default();
            for (i, d) in dims.iter().enumerate() {
                let mut dim = Writer::default();
                match d {
                    Some(v) => dim.int(1, *v),
                    None => dim.string(2, if i == 0 { "N" } else { "?" }),
                }
                shape.message(1, dim);
            }
            tensor.message(2, shape);
        }
        let mut ty = Writer::default();
        ty.message(1, tensor);
        let mut w = Writer::default();
        w.string(1, &self.name);
        w.message(2, ty);
        w
    }
}

/// A whole model: one graph, default opset.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub graph_name: String,
    pub opset: i64,
    pub nodes: Vec<Node>,
    pub initializers: Vec<Tensor>,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// `metadata_props` entries (provenance).
    pub metadata: Vec<(String, String)>,
}

impl Model {
    /// The serialised `ModelProto`.
    pub fn encode(&self) -> Vec<u8> {
        let mut g = Writer::default();
        for n in &self.nodes {
            g.message(1, n.encode());
        }
        g.string(2, &self.graph_name);
        for t in &self.initializers {
            g.message(5, t.encode());
        }
        for i in &self.inputs {
            g.message(11, i.encode());
        }
        for o in &self.outputs {
            g.message(12, o.encode());
        }
        let mut m = Writer::default();
        m.int(1, 8); // IR version 8
        m.string(2, "shiren");
        // A fixed converter version (not the crate version) keeps converted files byte-stable across releases.
        m.string(3, "tfjs-converter-1");
        m.message(7, g);
        let mut opset = Writer::default();
        opset.string(1, "");
        opset.int(2, self.opset);
        m.message(8, opset);
        for (k, v) in &self.metadata {
            let mut p = Writer::default();
            p.string(1, k);
            p.string(2, v);
            m.message(14, p);
        }
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys() {
        let mut w = Writer::default();
        w.int(1, 300);
        assert_eq!(w.0, vec![0x08, 0xAC, 0x02]);
        let mut w = Writer::default();
        w.int(1, -1);
        assert_eq!(w.0.len(), 11); // negative int64 as a 10-byte varint
        let mut w = Writer::default();
        w.string(2, "ab");
        assert_eq!(w.0, vec![0x12, 2, b'a', b'b']);
    }
}
