"""The Python `face_recognition` library on the same photos as shiren, for the face benchmark's side-by-side run.

Per photo, timed as one step: decode (PIL) -> HOG detection (one upsample, the library's default) -> 5-point
landmarks ("small" model) -> 150x150 chip -> ResNet descriptor, for the largest face. Then, untimed per photo, the
network alone on dlib's own chips (to compare dlib's runtime with ONNX Runtime on the same network). Prints JSON:
per-photo times, descriptors by file, and the network-only time.

With a second argument (a JSON object: photo path -> shiren's five FaceMesh points in dlib's order), also the
descriptor of dlib's own chip (`get_face_chip`) cut at those points: the same network and chip extraction with only
the landmarks changed, to compare dlib's 5-point model with FaceMesh as the source of the alignment.

Usage: python face_recognition_bench.py photos.json [points.json]
"""
import json
import sys
import time

import dlib
import face_recognition
import face_recognition_models
import numpy as np

paths = json.load(open(sys.argv[1]))
net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
sp = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())


def largest(locations):
    return max(locations, key=lambda l: (l[2] - l[0]) * (l[1] - l[3]))


def photo(path):
    img = face_recognition.load_image_file(path)
    locs = face_recognition.face_locations(img)
    if not locs:
        return img, None, None
    loc = largest(locs)
    enc = face_recognition.face_encodings(img, [loc], num_jitters=1, model="small")[0]
    return img, loc, enc


photo(paths[0])  # warm-up
times, descriptors, net_times = [], {}, []
for p in paths:
    t = time.perf_counter()
    img, loc, enc = photo(p)
    times.append(time.perf_counter() - t)
    if enc is None:
        continue
    descriptors[p] = [float(v) for v in enc]
    top, right, bottom, left = loc
    shape = sp(img, dlib.rectangle(left, top, right, bottom))
    chip = dlib.get_face_chip(img, shape, 150, 0.25)
    net.compute_face_descriptor(chip)
    t = time.perf_counter()
    for _ in range(3):
        net.compute_face_descriptor(chip)
    net_times.append((time.perf_counter() - t) / 3)
facemesh_descriptors = {}
if len(sys.argv) > 2:
    for p, pts in json.load(open(sys.argv[2])).items():
        img = face_recognition.load_image_file(p)
        xs, ys = [q[0] for q in pts], [q[1] for q in pts]
        box = dlib.rectangle(int(min(xs)), int(min(ys)), int(max(xs)), int(max(ys)))
        shape = dlib.full_object_detection(box, [dlib.point(round(q[0]), round(q[1])) for q in pts])
        chip = dlib.get_face_chip(img, shape, 150, 0.25)
        facemesh_descriptors[p] = [float(v) for v in net.compute_face_descriptor(chip)]
times_ms = sorted(t * 1000 for t in times)
print(json.dumps({
    "dlib": dlib.__version__,
    "per_photo_ms": [t * 1000 for t in times],
    "p50_ms": times_ms[len(times_ms) // 2],
    "mean_ms": float(np.mean(times_ms)),
    "network_only_ms": float(np.median(net_times) * 1000) if net_times else None,
    "descriptors": descriptors,
    "facemesh_point_descriptors": facemesh_descriptors,
}))
