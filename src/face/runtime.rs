//! ONNX Runtime, loaded once per process from the provisioned library, and model sessions around it.
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot load ONNX Runtime from {0}: {1}")]
    Load(String, String),
    #[error("model {0}: {1}")]
    Model(String, String),
}

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment (the first library path wins).
pub fn environment(lib: &Path) -> Result<&'static Environment, RuntimeError> {
    ENV.get_or_init(|| {
        ort::init_from(lib)
            .map_err(|e| e.to_string())?
            .with_name("shiren")
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| RuntimeError::Load(lib.display().to_string(), e.clone()))
}

/// One output tensor: shape and values.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A loaded model. Sessions run one call at a time; ONNX Runtime parallelises inside a call.
pub struct OnnxModel {
    name: String,
    input: String,
    first_output: String,
    session: Mutex<Session>,
}

impl OnnxModel {
    /// Loads `path` with `threads` intra-op threads and thread spinning off (spinning sessions starve each other
    /// on small machines).
    pub fn load(
        env: &Environment,
        name: &str,
        path: &Path,
        threads: usize,
    ) -> Result<OnnxModel, RuntimeError> {
        let err = |e: String| RuntimeError::Model(name.to_string(), e);
        let session = Session::builder(env)
            .map_err(|e| err(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| err(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| err(e.to_string()))?
            .with_inter_op_spinning(false)
            .map_err(|e| err(e.to_string()))?
            .commit_from_file(path)
            .map_err(|e| err(e.to_string()))?;
        let input = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| err("the model has no input".into()))?;
        let first_output = session
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .unwrap_or_default();
        Ok(OnnxModel {
            name: name.to_string(),
            input,
            first_output,
            session: Mutex::new(session),
        })
    }

    /// The name of the model's first output.
    pub fn first_output(&self) -> &str {
        &self.first_output
    }

    /// Runs the model on one NHWC float tensor and returns the named outputs, in the order asked.
    pub fn run(
        &self,
        shape: [usize; 4],
        data: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<Output>, RuntimeError> {
        let err = |e: String| RuntimeError::Model(self.name.clone(), e);
        let tensor = TensorRef::from_array_view((shape, data)).map_err(|e| err(e.to_string()))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| err("session lock poisoned".into()))?;
        let result = session
            .run(ort::inputs![self.input.as_str() => tensor])
            .map_err(|e| err(e.to_string()))?;
        outputs
            .iter()
            .map(|name| {
                let value = result
                    .get(*name)
                    .ok_or_else(|| err(format!("no output {name}")))?;
                let (shape, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| err(e.to_string()))?;
                Ok(Output {
                    shape: shape.iter().map(|d| (*d).max(0) as usize).collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}
