"""Compile the step option ``triton``'s kernels for the H200 (sm90) without a GPU: what the
interpreter cannot check (that Triton's compiler and ptxas accept them, with tensor-core
products, within the shared memory), and what their registers cost.

For each configuration of ``empirical.parity.kernels`` (the autotuned bf16 ones, or the
float32 tile with ``--precision fp32``): compiled with Triton's own compiler for
``GPUTarget("cuda", 90, 32)`` on the Figure-2 shapes (K = 128 input columns, 64 logit
columns, a window of 32), then assembled by the ptxas that Triton ships; printed: seconds,
shared memory (bytes; an H200 block has at most 232 448), registers per thread, bytes of
register spills, whether the products are wgmma instructions. Exit 1 if a configuration
fails to compile or exceeds the shared memory.

    python benchmarks/triton_sm90.py                 # every bf16 configuration (~1 min)
    python benchmarks/triton_sm90.py --first         # the first of each kernel (the tests)
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "0"           # compile for real, whatever the caller set
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Figure 2: 101 input columns padded to 128, 30 networks (64 logit columns), a window of 32
KB, NC, NW = 128, 64, 32
#: an sm90 block's shared memory in bytes
SHARED_LIMIT = 232_448


def signature(which: str, dtype: str, config, prec: str):
    """The kernel, its argument types, constants and 16-byte-aligned pointer arguments."""
    from empirical.parity import kernels as K
    ptrs = dict(x_ptr=dtype, sub_ptr="i32", wx_ptr=dtype, c_ptr=dtype, w2_ptr="fp32",
                net_ptr="i32")
    ptrs.update(out_ptr="fp32") if which == "forward" else ptrs.update(
        gz_ptr=dtype, dwx_ptr="fp32", dc_ptr="fp32", dw2_ptr="fp32")
    sig = {name: "*" + t for name, t in ptrs.items()}
    sig.update(B="i32", Hp="i32", T="i32")
    consts = dict(KB=KB, NC=NC, **({} if which == "forward" else dict(NW=NW)),
                  **config.kwargs, PREC=prec)
    sig.update({name: "constexpr" for name in consts})
    kernel = K._forward_kernel if which == "forward" else K._backward_kernel
    return kernel, sig, consts, range(len(ptrs))


def compile_one(which: str, config, precision: str, workdir: Path) -> dict:
    """Compile one configuration for sm90 and assemble it: its figures, or its error."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    dtype, prec = ("bf16", "bf16") if precision == "bf16" else ("fp32", "ieee")
    kernel, sig, consts, aligned = signature(which, dtype, config, prec)
    attrs = {(i,): [["tt.divisibility", 16]] for i in aligned}
    t0 = time.perf_counter()
    try:
        compiled = triton.compile(ASTSource(kernel, sig, consts, attrs),
                                  target=GPUTarget("cuda", 90, 32),
                                  options=dict(num_warps=config.num_warps,
                                               num_stages=config.num_stages))
    except Exception as e:              # the finding: reported, the others still compiled
        return dict(error=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
    ptx = compiled.asm["ptx"]
    (workdir / "k.ptx").write_text(ptx)
    ptxas = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    log = subprocess.run([str(ptxas), "-arch=sm_90a", "-v", str(workdir / "k.ptx"), "-o",
                          str(workdir / "k.cubin")], capture_output=True, text=True).stderr
    regs = [int(r) for r in re.findall(r"Used (\d+) registers", log)]
    spill = [int(s) for s in re.findall(r"(\d+) bytes spill stores", log)]
    return dict(seconds=time.perf_counter() - t0, shared=compiled.metadata.shared,
                registers=max(regs, default=None), spill=max(spill, default=0),
                wgmma="wgmma" in ptx)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--first", action="store_true", help="the first configuration of each")
    args = p.parse_args(argv)
    from empirical.parity import kernels as K
    if not K.available():
        print("triton is not installed")
        return 0
    configs = K.FORWARD_CONFIGS, K.BACKWARD_CONFIGS
    if args.precision == "fp32":
        configs = tuple(k.configs for k in K._KERNELS["float32"])
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for which, cs in zip(("forward", "backward"), configs):
            for c in cs[:1] if args.first else cs:
                r = compile_one(which, c, args.precision, Path(tmp))
                ok = "error" not in r and r["shared"] <= SHARED_LIMIT
                bad += not ok
                name = (f"{which} {args.precision} {c.kwargs} warps {c.num_warps} "
                        f"stages {c.num_stages}")
                print(f"{name}: " + (r["error"] if "error" in r else
                      f"{r['seconds']:.1f} s, shared {r['shared']} B, {r['registers']} "
                      f"registers, spill {r['spill']} B, wgmma {r['wgmma']}"
                      + ("" if ok else " OVER THE SHARED MEMORY")), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
