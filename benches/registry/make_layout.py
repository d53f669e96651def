#!/usr/bin/env python3
"""An OCI layout of 4 layers of 256 MiB random bytes each, gzip or plain tar
(benches/registry/figures.sh): make_layout.py DIR gz|plain."""
import hashlib, json, os, subprocess, sys, tarfile, io

out, kind = sys.argv[1], sys.argv[2]  # kind: gz | plain
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)

def put(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b: break
            h.update(b)
    d = h.hexdigest()
    os.rename(path, os.path.join(blobs, d))
    return "sha256:" + d, os.path.getsize(os.path.join(blobs, d))

layers, diff_ids = [], []
for i in range(4):
    raw = os.path.join(out, f"layer{i}.bin")
    subprocess.run(["sh", "-c", f"head -c {256<<20} /dev/urandom > {raw}"], check=True)
    tpath = os.path.join(out, f"layer{i}.tar")
    with tarfile.open(tpath, "w", format=tarfile.GNU_FORMAT) as t:
        t.add(raw, arcname=f"data{i}.bin")
    os.remove(raw)
    h = hashlib.sha256()
    with open(tpath, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b: break
            h.update(b)
    diff_ids.append("sha256:" + h.hexdigest())
    if kind == "gz":
        subprocess.run(["gzip", "-1", "-n", tpath], check=True)
        d, s = put(tpath + ".gz")
        mt = "application/vnd.oci.image.layer.v1.tar+gzip"
    else:
        d, s = put(tpath)
        mt = "application/vnd.oci.image.layer.v1.tar"
    layers.append({"mediaType": mt, "digest": d, "size": s})

config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cp = os.path.join(out, "config.json"); open(cp, "wb").write(config)
cd, cs = put(cp)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                       "layers": layers}).encode()
mp = os.path.join(out, "manifest.json"); open(mp, "wb").write(manifest)
md, ms = put(mp)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(os.path.join(out, "index.json"), "w"))
json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
print(md)
