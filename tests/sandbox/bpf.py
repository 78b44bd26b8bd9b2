"""A tiny classic-BPF interpreter for seccomp filters: used only by the tests.

Runs a program (the raw `struct sock_filter` array that seccomp.build_filter
returns) on one `struct seccomp_data`, as the kernel would, and returns the
filter's action. Checks what the kernel's verifier checks for these opcodes:
jumps land inside the program, loads are aligned and inside seccomp_data, the
program is not empty or longer than 4096 instructions, and it ends every path
in a return. Opcodes a seccomp filter may use but this interpreter does not
implement (ALU, the X register, scratch memory) raise NotImplementedError, so a
builder change cannot go untested.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7

SOCK_FILTER = struct.Struct("=HBBI")
# struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6];}
SECCOMP_DATA = struct.Struct("<iIQ6Q")
MAX_INSNS = 4096
WORD = 4
U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF

# Instruction classes and fields (linux/bpf_common.h).
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
BPF_W = 0x00
BPF_ABS = 0x20
BPF_K, BPF_X = 0x00, 0x08
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40

# Actions (linux/seccomp.h).
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF


@dataclass(frozen=True)
class Insn:
    code: int
    jt: int
    jf: int
    k: int


def decode(program: bytes) -> list[Insn]:
    if len(program) % SOCK_FILTER.size:
        raise ValueError(f"program length {len(program)} is not a multiple of {SOCK_FILTER.size}")
    insns = [Insn(*fields) for fields in SOCK_FILTER.iter_unpack(program)]
    if not 0 < len(insns) <= MAX_INSNS:
        raise ValueError(f"{len(insns)} instructions: the kernel accepts 1..{MAX_INSNS}")
    for pc, insn in enumerate(insns):
        if insn.code & 0x07 == BPF_JMP:
            targets = [pc + 1 + insn.k] if insn.code & 0xF0 == BPF_JA else [pc + 1 + insn.jt, pc + 1 + insn.jf]
            if any(t >= len(insns) for t in targets):
                raise ValueError(f"instruction {pc} jumps past the end")
    if insns[-1].code & 0x07 != BPF_RET:
        raise ValueError("the last instruction is not a return")
    return insns


def seccomp_data(nr: int, arch: int = AUDIT_ARCH_X86_64, args: tuple[int, ...] = (),
                 instruction_pointer: int = 0) -> bytes:
    """Pack a seccomp_data; args are 64-bit (negative values as the kernel sees them), missing ones 0."""
    if len(args) > 6:
        raise ValueError("at most 6 arguments")
    full = [a & U64 for a in args] + [0] * (6 - len(args))
    word = nr & U32
    signed_nr = word - (1 << 32) if word >= 1 << 31 else word
    return SECCOMP_DATA.pack(signed_nr, arch, instruction_pointer, *full)


def run(program: bytes, data: bytes) -> int:
    """The action the filter returns for this seccomp_data."""
    insns = decode(program)
    a = 0
    pc = 0
    while True:
        insn = insns[pc]
        cls = insn.code & 0x07
        if cls == BPF_LD:
            if insn.code != BPF_LD | BPF_W | BPF_ABS:
                raise NotImplementedError(f"load opcode {insn.code:#x}")
            if insn.k % WORD or insn.k + WORD > len(data):
                raise ValueError(f"misaligned or out-of-bounds load at {insn.k}")
            a = struct.unpack_from("<I", data, insn.k)[0]
        elif cls == BPF_JMP:
            op = insn.code & 0xF0
            if insn.code & BPF_X:
                raise NotImplementedError(f"jump on the X register {insn.code:#x}")
            operand = insn.k
            if op == BPF_JA:
                pc += 1 + insn.k
                continue
            if op == BPF_JEQ:
                taken = a == operand
            elif op == BPF_JGT:
                taken = a > operand
            elif op == BPF_JGE:
                taken = a >= operand
            elif op == BPF_JSET:
                taken = bool(a & operand)
            else:
                raise NotImplementedError(f"jump opcode {insn.code:#x}")
            pc += 1 + (insn.jt if taken else insn.jf)
            continue
        elif cls == BPF_RET:
            if insn.code != BPF_RET | BPF_K:
                raise NotImplementedError(f"return opcode {insn.code:#x}")
            return insn.k
        else:
            raise NotImplementedError(f"opcode {insn.code:#x}")
        pc += 1


def evaluate(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    return run(program, seccomp_data(nr, arch, args))


def describe(action: int) -> str:
    """ALLOW, KILL_PROCESS, ERRNO(1), ... for assertion messages."""
    full = action & SECCOMP_RET_ACTION_FULL
    if action == SECCOMP_RET_ALLOW:
        return "ALLOW"
    if action == SECCOMP_RET_KILL_PROCESS:
        return "KILL_PROCESS"
    if full == SECCOMP_RET_ERRNO:
        return f"ERRNO({action & SECCOMP_RET_DATA})"
    return f"{action:#x}"
