"""Reference descriptors from dlib itself for tests/suite/face_dlib.rs (run once; the output is committed as numbers).

Usage, in a throwaway virtualenv outside the repository:
    python3 -m venv /tmp/dlib-ref && /tmp/dlib-ref/bin/pip install dlib-bin==20.0.1.post1 numpy==2.4.6
    pip download --no-deps face_recognition_models==0.3.0   # then untar it
    /tmp/dlib-ref/bin/python benches/python/dlib_reference.py <dir>/dlib_face_recognition_resnet_model_v1.dat

The chip is synthetic and defined by integer arithmetic only (the same formula is in tests/suite/face_dlib.rs), so no image
is committed and both sides build exactly the same pixels. Prints JSON: dlib's version and the raw (not normalised)
128-d descriptor that dlib computes for the chip.
"""
import json
import sys

import dlib
import numpy as np


def synthetic_chip():
    """150x150 RGB uint8: v(x, y, c) = (x*(c+3) + y*(5-c) + ((x ^ y) & 63) + 40*((x//25 + y//25 + c) % 3)) % 256."""
    chip = np.zeros((150, 150, 3), np.uint8)
    for y in range(150):
        for x in range(150):
            for c in range(3):
                chip[y, x, c] = (x * (c + 3) + y * (5 - c) + ((x ^ y) & 63) + 40 * ((x // 25 + y // 25 + c) % 3)) % 256
    return chip


net = dlib.face_recognition_model_v1(sys.argv[1])
d = np.array(net.compute_face_descriptor(synthetic_chip()), np.float64)
print(json.dumps({"dlib": dlib.__version__, "descriptor": [float(f"{v:.7g}") for v in d]}))
