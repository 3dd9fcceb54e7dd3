"""Writes the weights and packed-file seeds of fuzz/corpus/ for the network
of fuzz/fuzz_net.h (run once from the repository root after building)."""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.getcwd())
import darknet_py as dn  # noqa: E402

text = open("fuzz/fuzz_net.h").read()
cfg_text = "".join(re.findall(r'^\s+"(.*)"', text[text.index("fuzz_net_cfg"):], re.M)).encode().decode("unicode_escape")
with tempfile.TemporaryDirectory() as d:
    cfg = os.path.join(d, "net.cfg")
    open(cfg, "w").write(cfg_text)
    net = dn.Network(cfg, seed=5)
    net.save_weights("fuzz/corpus/weights/full.weights")
    net.save_weights("fuzz/corpus/weights/first2.weights", upto=2)
    dn.ternary.pack(cfg, "fuzz/corpus/weights/full.weights", os.path.join(d, "p.tpk"))
    data = open(os.path.join(d, "p.tpk"), "rb").read()
    open("fuzz/corpus/weights/packed.tpk", "wb").write(data)
    open("fuzz/corpus/packed/full.tpk", "wb").write(data[8:])  # the target adds the magic
    print(len(cfg_text), "cfg bytes;", len(data), "packed bytes")
