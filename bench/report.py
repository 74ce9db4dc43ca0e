"""What both benchmarks share: the line that says where, when and how they ran, Markdown tables, and the file.

Each benchmark prints its report and, with `--out`, writes the same Markdown to a file that the chapters and the
README include with Quarto's `{{< include >}}` shortcode, so that the numbers they show are the ones measured.
"""
from __future__ import annotations
import datetime, os, platform, resource, time
from pathlib import Path


def machine() -> str:
    "This machine in a few words: cores, CPU model and the instruction sets that matter for bf16 and int8, Python."
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    field = lambda name: next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith(name)), "")
    flags = field("flags").split()
    isa = ", ".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni") if f in flags)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores of an {field('model name') or platform.processor()}" + (f" ({isa})" if isa else "") + \
           f", Python {platform.python_version()}"


class SharedUse:
    "How much of the cores other processes took while the benchmark ran (from /proc/stat, less the benchmark's own time)."
    def __init__(self): self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float, float] | None:
        "(wall s, busy CPU s of the whole machine, steal s, CPU s of this process and its finished children)."
        try: cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        except (OSError, ValueError, IndexError): return None
        user, nice, system, idle, iowait, irq, softirq, steal = cpu
        tick = os.sysconf("SC_CLK_TCK")
        own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for f in ("ru_utime", "ru_stime"))
        return time.monotonic(), (user + nice + system + irq + softirq)/tick, steal/tick, own

    def share(self) -> tuple[float, float] | None:
        "The shares of the cores that other processes and the hypervisor (steal) took since this object was made."
        end = self._now()
        if self.start is None or end is None: return None
        (t0, busy0, steal0, own0), (t1, busy1, steal1, own1) = self.start, end
        capacity = (t1 - t0)*(os.cpu_count() or 1)
        return max(0.0, (busy1 - busy0) - (own1 - own0))/capacity, (steal1 - steal0)/capacity

    def line(self) -> str:
        "One sentence on the other work the machine did during the run."
        if (shares := self.share()) is None: return ""
        others, steal = shares
        verdict = ("the machine was shared with other work, which slows some methods more than others: compare rows "
                   "within this table" if others + steal > 0.05 else "the machine was otherwise idle")
        return f"Other processes used {others:.0%} of the cores during the run, and the hypervisor took {steal:.0%}: {verdict}."


def run_line(settings: str, use: SharedUse) -> str:
    "The report's first line: when, on what, with which settings, and how busy the machine was."
    return f"Measured on {datetime.date.today().isoformat()}, {machine()}: {settings}. {use.line()}".rstrip()


def table(header: list[str], rows: list[list]) -> str:
    "A Markdown table; numbers are written as they are given (format them before)."
    lines = ["| " + " | ".join(header) + " |", "|" + "---|"*len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows])


def write(out: str | Path | None, blocks: list[str]) -> Path | None:
    "Write the report's Markdown blocks to `out` (its folder is made), unless `out` is None."
    if out is None: return None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(b.strip() for b in blocks if b.strip()) + "\n")
    print(f"\nwrote {out}")
    return out
