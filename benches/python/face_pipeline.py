"""The face pipeline of shiren's engine written with numpy + onnxruntime, for the side-by-side benchmark.

Same models, same decoded images (raw RGB written by benches/face.rs), same steps: letterbox + BlazeFace front
(back as fallback), NMS, two FaceMesh passes on rotated crops, five points, similarity fit to the ArcFace template,
bilinear warp to 112x112, MobileFace. Prints the p50 per photo in milliseconds and the mean embedding cosine to
shiren's (a check that both ran the same pipeline).
"""
import sys, time, json
import numpy as np
import onnxruntime as ort

models, images_file, meta_file = sys.argv[1], sys.argv[2], sys.argv[3]
o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
sess = {n: ort.InferenceSession(f"{models}/{n}.onnx", o, providers=["CPUExecutionProvider"])
        for n in ["blazeface-front", "blazeface-back", "facemesh", "mobileface"]}
ARC = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def bilinear(img, xs, ys):
    h, w, _ = img.shape
    x0 = np.floor(xs).astype(np.int64); y0 = np.floor(ys).astype(np.int64)
    fx = (xs - x0)[..., None]; fy = (ys - y0)[..., None]
    def px(x, y):
        ok = (x >= 0) & (y >= 0) & (x < w) & (y < h)
        v = img[np.clip(y, 0, h - 1), np.clip(x, 0, w - 1)].astype(np.float32)
        return v * ok[..., None]
    top = px(x0, y0) + (px(x0 + 1, y0) - px(x0, y0)) * fx
    bot = px(x0, y0 + 1) + (px(x0 + 1, y0 + 1) - px(x0, y0 + 1)) * fx
    return top + (bot - top) * fy


def warp(img, a, b, tx, ty, w, h):
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    return bilinear(img, a * u - b * v + tx, b * u + a * v + ty)


def resize_area(img, nw, nh):
    # Triangle-like downscale: sample at pixel centres of the target grid (bilinear), close enough for timing.
    h, w, _ = img.shape
    v, u = np.mgrid[0:nh, 0:nw].astype(np.float32)
    return bilinear(img, (u + 0.5) * w / nw - 0.5, (v + 0.5) * h / nh - 0.5)


def detect(img, name, size, strides, min_score=0.75):
    h, w, _ = img.shape
    scale = size / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = resize_area(img, nw, nh)
    px, py = (size - nw) // 2, (size - nh) // 2
    x = np.full((size, size, 3), -1.0, np.float32)
    x[py:py + nh, px:px + nw] = small / 127.5 - 1.0
    out = dict(zip([o.name for o in sess[name].get_outputs()], sess[name].run(None, {sess[name].get_inputs()[0].name: x[None]})))
    dets = []
    for (stride, per, s_name, r_name) in [(strides[0], 2, "Identity", "Identity_2"), (strides[1], 6, "Identity_1", "Identity_3")]:
        g = size // stride
        scores = 1 / (1 + np.exp(-np.clip(out[s_name].reshape(-1), -80, 80)))
        regs = out[r_name].reshape(-1, 16)
        cells = np.arange(g * g * per) // per
        ax = ((cells % g) + 0.5) * stride; ay = ((cells // g) + 0.5) * stride
        for i in np.nonzero(scores >= min_score)[0]:
            r = regs[i]
            cx, cy = r[0] + ax[i], r[1] + ay[i]
            kp = np.stack([r[4::2][:6] + ax[i], r[5::2][:6] + ay[i]], 1)
            box = np.array([cx - r[2] / 2, cy - r[3] / 2, cx + r[2] / 2, cy + r[3] / 2])
            dets.append((scores[i], (box - [px, py, px, py]) / scale, (kp - [px, py]) / scale))
    dets.sort(key=lambda d: -d[0])
    keep = []
    for d in dets:
        def iou(a, b):
            ix = max(0, min(a[2], b[2]) - max(a[0], b[0])); iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
            u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
            return ix * iy / u if u > 0 else 0
        if all(iou(k[1], d[1]) < 0.3 for k in keep):
            keep.append(d)
    return keep


def mesh_at(img, cx, cy, side, angle):
    S = 192; k = side / S
    c, s = np.cos(angle) * k, np.sin(angle) * k
    tx = cx - (c * S / 2 - s * S / 2); ty = cy - (s * S / 2 + c * S / 2)
    crop = warp(img, c, s, tx, ty, S, S) / 255.0
    out = dict(zip([o.name for o in sess["facemesh"].get_outputs()], sess["facemesh"].run(None, {sess["facemesh"].get_inputs()[0].name: crop[None].astype(np.float32)})))
    m = out["Identity_2"].reshape(-1, 3)
    return np.stack([c * m[:, 0] - s * m[:, 1] + tx, s * m[:, 0] + c * m[:, 1] + ty], 1)


def embed_photo(img):
    dets = detect(img, "blazeface-front", 128, (8, 16)) or detect(img, "blazeface-back", 256, (16, 32))
    if not dets:
        return None
    dets.sort(key=lambda d: -(d[1][2] - d[1][0]) * (d[1][3] - d[1][1]))
    _, box, kp = dets[0]
    l, r = sorted([kp[0], kp[1]], key=lambda p: p[0])
    side = max(box[2] - box[0], box[3] - box[1]) * 1.5
    mesh = mesh_at(img, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side, np.arctan2(r[1] - l[1], r[0] - l[0]))
    mn, mx = mesh.min(0), mesh.max(0)
    mesh = mesh_at(img, (mn[0] + mx[0]) / 2, (mn[1] + mx[1]) / 2, (mx - mn).max() * 1.5,
                   np.arctan2(mesh[263, 1] - mesh[33, 1], mesh[263, 0] - mesh[33, 0]))
    pts = np.stack([(mesh[33] + mesh[133]) / 2, (mesh[362] + mesh[263]) / 2, mesh[1], mesh[61], mesh[291]])
    ms, md = pts.mean(0), ARC.mean(0)
    xs, xd = pts - ms, ARC - md
    n = (xs ** 2).sum()
    a = (xs * xd).sum() / n; b = (xs[:, 0] * xd[:, 1] - xs[:, 1] * xd[:, 0]).sum() / n
    tx = md[0] - (a * ms[0] - b * ms[1]); ty = md[1] - (b * ms[0] + a * ms[1])
    d = a * a + b * b; ia, ib = a / d, -b / d
    itx = -(ia * tx - ib * ty); ity = -(ib * tx + ia * ty)
    chip = warp(img, ia, ib, itx, ity, 112, 112).astype(np.float32)
    e = sess["mobileface"].run(None, {sess["mobileface"].get_inputs()[0].name: chip[None]})[0].reshape(-1)
    return e / np.linalg.norm(e)


meta = json.load(open(meta_file))
raw = np.fromfile(images_file, dtype=np.uint8)
imgs, at = [], 0
for m in meta:
    n = m["w"] * m["h"] * 3
    imgs.append(raw[at:at + n].reshape(m["h"], m["w"], 3)); at += n
for img in imgs[:2]:
    embed_photo(img)
times, cos = [], []
for _ in range(3):
    for img, m in zip(imgs, meta):
        t = time.perf_counter(); e = embed_photo(img); times.append(time.perf_counter() - t)
        if e is not None and m["embedding"]:
            cos.append(float(np.dot(e, np.array(m["embedding"], np.float32))))
times.sort()
print(json.dumps({"p50_ms": times[len(times) // 2] * 1000, "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
                  "mean_cosine_to_shiren": float(np.mean(cos)) if cos else None}))
