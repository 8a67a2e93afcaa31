//! dlib's ResNet face descriptor converted to ONNX by shiren's own reader (src/face/dlib.rs) against dlib itself.
use shiren::face::runtime::{environment, OnnxModel};

use crate::common;

/// The synthetic 150×150 chip of `benches/python/dlib_reference.py` (integer arithmetic only, HWC RGB).
fn synthetic_chip() -> Vec<f32> {
    let mut v = Vec::with_capacity(150 * 150 * 3);
    for y in 0..150usize {
        for x in 0..150usize {
            for c in 0..3usize {
                let p =
                    x * (c + 3) + y * (5 - c) + ((x ^ y) & 63) + 40 * ((x / 25 + y / 25 + c) % 3);
                v.push((p % 256) as f32);
            }
        }
    }
    v
}

/// dlib 20.0.1's own descriptor of `synthetic_chip` (`face_recognition_model_v1.compute_face_descriptor`),
/// computed once by `benches/python/dlib_reference.py` with the model from `face_recognition_models==0.3.0`.
const DLIB_DESCRIPTOR: [f32; 128] = [
    -0.07711759,
    0.1275634,
    0.05239305,
    -0.03334088,
    -0.05952765,
    -0.06226933,
    -0.00401831,
    -0.03002276,
    0.1575074,
    -0.04243868,
    0.2268148,
    -0.04522063,
    -0.2680371,
    -0.06689006,
    0.03387753,
    0.09476552,
    -0.1345577,
    -0.05340056,
    -0.1496319,
    -0.1089501,
    0.03607152,
    0.01414597,
    -0.01349187,
    -0.007021091,
    -0.1112862,
    -0.323977,
    -0.08220102,
    -0.105217,
    0.08519424,
    -0.1172897,
    0.01839848,
    0.05673005,
    -0.1546245,
    -0.1002428,
    -0.01683642,
    0.02305558,
    -0.06473842,
    -0.09982763,
    0.146387,
    -0.03038014,
    -0.14779,
    -0.07052594,
    -0.01577297,
    0.2375465,
    0.1936082,
    0.005610457,
    0.006854523,
    -0.08687556,
    0.02481129,
    -0.2810339,
    0.02233671,
    0.1558796,
    0.01674574,
    0.1167298,
    0.1062529,
    -0.1279087,
    0.01870481,
    0.06362914,
    -0.1513443,
    -0.02108355,
    0.01394372,
    -0.1098536,
    -0.06203077,
    -0.1292117,
    0.1798398,
    0.08972456,
    -0.06372625,
    -0.0985081,
    0.1387441,
    -0.1480037,
    -0.02778771,
    0.08304183,
    -0.08659492,
    -0.1552058,
    -0.2720853,
    0.07349345,
    0.3846174,
    0.1911665,
    -0.1460152,
    0.01155356,
    -0.1253556,
    -0.07546145,
    0.05910908,
    0.02783213,
    -0.06713531,
    -0.03952467,
    -0.05357124,
    0.1115542,
    0.1587978,
    -0.09777869,
    -0.00249119,
    0.1787845,
    -0.03662971,
    0.03087031,
    -0.005011574,
    -0.01057443,
    -0.09820825,
    0.01264396,
    -0.06519582,
    -0.02424031,
    0.1903481,
    -0.09988409,
    0.02453311,
    0.1292606,
    -0.150117,
    0.1166854,
    0.04042409,
    -0.04132214,
    0.08374465,
    -0.03945894,
    -0.05365944,
    -0.04025868,
    0.2098912,
    -0.186405,
    0.2245997,
    0.190011,
    -0.01386478,
    0.1218314,
    0.0358988,
    0.08788782,
    -0.05163144,
    -0.0616253,
    -0.1588563,
    -0.02141551,
    0.04829929,
    0.02980884,
    -0.02260903,
    -0.02462254,
];

/// The largest difference measured when this test was written was 1.9e-7 on this chip (and 2.1e-7 to 2.7e-7 on
/// dlib's own aligned chips of three real photos, checked by hand with the same script's model): float rounding.
const MAX_DIFFERENCE: f32 = 1e-5;

#[test]
fn converted_resnet_reproduces_dlibs_descriptor() {
    let installed = common::installed_models();
    let env = environment(&installed.runtime_lib).unwrap();
    let model = OnnxModel::load(env, "dlib-resnet", &installed.models["dlib-resnet"], 2).unwrap();
    let out = model
        .run([1, 150, 150, 3], &synthetic_chip(), &["descriptor"])
        .unwrap();
    assert_eq!(out[0].shape, vec![1, 128]);
    let max = out[0]
        .data
        .iter()
        .zip(DLIB_DESCRIPTOR)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("max |shiren - dlib| = {max:e}");
    assert!(max <= MAX_DIFFERENCE, "max difference {max}");
}
