"""The llama.cpp build's part of a generator's name (no llama-cpp-python needed)."""
from backtrack.lm.llama_cpp_backend import build_tag

PORTABLE = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | "
            "OPENMP = 1 | REPACK = 1 | ")


def test_the_portable_build_keeps_the_bare_name_and_any_other_build_is_named():
    assert build_tag(PORTABLE, gpu=False) == ""
    avx512 = PORTABLE.replace("AVX2 = 1", "AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1")
    assert build_tag(avx512, gpu=False) == "+avx512+avx512_vnni"
    assert build_tag(PORTABLE.replace("OPENMP = 1", "OPENMP = 0"), gpu=False) == "-openmp"
    arm = "CPU : NEON = 1 | ARM_FMA = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
    assert build_tag(arm, gpu=False) == "+arm_fma+neon-avx-avx2-bmi2-f16c-fma-sse3-ssse3"


def test_a_gpu_build_is_named_and_only_the_cpu_section_counts():
    cuda_first = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | " + PORTABLE
    assert build_tag(cuda_first, gpu=True) == "+gpu"
    cuda_after = PORTABLE + "CUDA : USE_GRAPHS = 1 | "
    assert build_tag(cuda_after, gpu=True) == "+gpu"
