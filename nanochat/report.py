"""
The training report, classic format: each phase logs a section to BASE/report/<slug>.md, and
`generate` concatenates header + sections and appends the summary table.

    python -m nanochat.report reset      # at the start of a pipeline: clears sections, writes header.md
    python -m nanochat.report generate   # at the end: writes BASE/report/report.md and ./report.md
"""

import datetime
import os
import platform
import re
import shlex
import shutil
import subprocess

from nanochat.common import get_base_dir

EXPECTED_FILES = [
    "tokenizer-training.md",
    "tokenizer-evaluation.md",
    "base-model-training.md",
    "base-model-loss.md",
    "base-model-evaluation.md",
    "midtraining.md",
    "chat-evaluation-mid.md",
    "chat-sft.md",
    "chat-evaluation-sft.md",
    "chat-rl.md",
    "chat-evaluation-rl.md",
]
# metrics of the summary table (classic names; our synthetic tasks fill the ones that exist here)
chat_metrics = [
    "ARC-Easy",
    "ARC-Challenge",
    "MMLU",
    "GSM8K",
    "HumanEval",
    "ChatCORE",
    "Arithmetic",
    "Spelling",
    "Identity",
]


def run_command(cmd):
    try:  # split here, no shell: nothing in cmd is ever interpreted by one
        result = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=5)
        return result.stdout.strip() if result.returncode == 0 else None
    except Exception:
        return None


def get_git_info():
    info = {}
    info["branch"] = run_command("git rev-parse --abbrev-ref HEAD") or "unknown"
    info["commit"] = run_command("git rev-parse --short HEAD") or "unknown"
    status = run_command("git status --porcelain")
    info["dirty"] = bool(status) if status is not None else False
    info["message"] = (run_command("git log -1 --pretty=%B") or "").split("\n")[0][:80]
    return info


def get_gpu_info():
    try:
        import torch

        if not torch.cuda.is_available():
            return {"available": False}
        n = torch.cuda.device_count()
        names = [torch.cuda.get_device_name(i) for i in range(n)]
        mem = sum(torch.cuda.get_device_properties(i).total_memory for i in range(n))
        return {
            "available": True,
            "count": n,
            "names": names,
            "memory_gb": mem / 1024**3,
            "cuda_version": torch.version.cuda or "unknown",
        }
    except Exception:
        return {"available": False}


def get_system_info():
    info = {"platform": platform.system(), "python_version": platform.python_version()}
    try:
        import torch

        info["torch_version"] = torch.__version__
    except ImportError:
        info["torch_version"] = "unknown"
    info["cpu_count_logical"] = os.cpu_count()
    try:
        with open("/proc/meminfo") as f:
            info["memory_gb"] = int(f.readline().split()[1]) / 1024**2
    except Exception:
        info["memory_gb"] = 0.0
    info["user"] = os.environ.get("USER", "unknown")
    return info


def estimate_hourly_rate(gpu_info):
    if not gpu_info.get("available"):
        return None
    per_gpu = 2.0
    name = gpu_info["names"][0]
    for key, rate in (("H100", 3.00), ("H200", 3.00), ("A100", 1.79), ("V100", 0.55)):
        if key in name:
            per_gpu = rate
    return per_gpu * gpu_info["count"]


def get_bloat_info():
    """Size of the tracked source (git ls-files), for the header and summary."""
    files = run_command("git ls-files '*.py' '*.md' '*.sh' '*.html' '*.toml'")
    files = [f for f in (files or "").split("\n") if f and os.path.isfile(f)]
    chars = lines = 0
    for f in files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
            chars += len(text)
            lines += text.count("\n")
        except OSError:
            pass
    return {"chars": chars, "lines": lines, "files": len(files), "tokens": chars // 4}


def generate_header():
    timestamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    git, gpu, sysinfo = get_git_info(), get_gpu_info(), get_system_info()
    header = f"# nanochat training report\n\nGenerated: {timestamp}\n\n## Environment\n\n"
    header += (
        f"### Git Information\n- Branch: {git['branch']}\n"
        f"- Commit: {git['commit']} {'(dirty)' if git['dirty'] else '(clean)'}\n- Message: {git['message']}\n\n"
    )
    header += (
        f"### Hardware\n- Platform: {sysinfo['platform']}\n"
        f"- CPUs: {sysinfo['cpu_count_logical']} cores ({sysinfo['cpu_count_logical']} logical)\n"
        f"- Memory: {sysinfo['memory_gb']:.1f} GB\n"
    )
    if gpu.get("available"):
        header += (
            f"- GPUs: {gpu['count']}x {', '.join(sorted(set(gpu['names'])))}\n"
            f"- GPU Memory: {gpu['memory_gb']:.1f} GB total\n- CUDA Version: {gpu['cuda_version']}\n"
        )
        header += f"- Hourly Rate: ${estimate_hourly_rate(gpu):.2f}/hour\n"
    else:
        header += "- GPUs: None available\n"
    header += f"\n### Software\n- Python: {sysinfo['python_version']}\n- PyTorch: {sysinfo['torch_version']}\n\n"
    bloat = get_bloat_info()
    header += (
        f"### Bloat\n- Characters: {bloat['chars']:,}\n- Lines: {bloat['lines']:,}\n- Files: {bloat['files']:,}\n"
        f"- Tokens (approx): {bloat['tokens']:,}\n- Dependencies (uv.lock lines): 0\n\n"
    )
    return header


def slugify(text):
    return text.lower().replace(" ", "-")


def extract(section, keys):
    out = {}
    for line in section.split("\n"):
        for key in [keys] if isinstance(keys, str) else keys:
            if line.startswith(f"- {key}:"):
                out[key] = line.split(":", 1)[1].strip()
    return out


def extract_timestamp(content, prefix):
    for line in content.split("\n"):
        if line.startswith(prefix):
            try:
                return datetime.datetime.strptime(line.split(":", 1)[1].strip(), "%Y-%m-%d %H:%M:%S")
            except ValueError:
                pass
    return None


class Report:
    def __init__(self, report_dir):
        os.makedirs(report_dir, exist_ok=True)
        self.report_dir = report_dir

    def log(self, section, data):
        """Write one section: '## Title', timestamp, then '- key: value' per item (floats .4f, big ints with commas)."""
        file_path = os.path.join(self.report_dir, f"{slugify(section)}.md")
        with open(file_path, "w", encoding="utf-8") as f:
            f.write(f"## {section}\n")
            f.write(f"timestamp: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}\n\n")
            for item in data:
                if not item:
                    continue
                if isinstance(item, str):
                    f.write(item)
                else:
                    for k, v in item.items():
                        if isinstance(v, float):
                            vstr = f"{v:.4f}"
                        elif isinstance(v, int) and not isinstance(v, bool) and v >= 10000:
                            vstr = f"{v:,.0f}"
                        else:
                            vstr = str(v)
                        f.write(f"- {k}: {vstr}\n")
            f.write("\n")
        return file_path

    def generate(self):
        report_dir = self.report_dir
        report_file = os.path.join(report_dir, "report.md")
        print(f"Generating report to {report_file}")
        final_metrics = {}
        start_time = end_time = None
        bloat_data = ""
        with open(report_file, "w", encoding="utf-8") as out_file:
            header_file = os.path.join(report_dir, "header.md")
            if os.path.exists(header_file):
                with open(header_file, encoding="utf-8") as f:
                    header_content = f.read()
                out_file.write(header_content)
                start_time = extract_timestamp(header_content, "Run started:")
                m = re.search(r"### Bloat\n(.*?)\n\n", header_content, re.DOTALL)
                bloat_data = m.group(1) if m else ""
            else:
                start_time = None
                print(f"Warning: {header_file} does not exist. Did you forget to run `nanochat reset`?")
            for file_name in EXPECTED_FILES:
                section_file = os.path.join(report_dir, file_name)
                if not os.path.exists(section_file):
                    print(f"Warning: {section_file} does not exist, skipping")
                    continue
                with open(section_file, encoding="utf-8") as in_file:
                    section = in_file.read()
                if "rl" not in file_name:
                    end_time = extract_timestamp(section, "timestamp:") or end_time
                if file_name == "base-model-evaluation.md":
                    final_metrics["base"] = extract(section, "CORE")
                if file_name == "chat-evaluation-mid.md":
                    final_metrics["mid"] = extract(section, chat_metrics)
                if file_name == "chat-evaluation-sft.md":
                    final_metrics["sft"] = extract(section, chat_metrics)
                if file_name == "chat-evaluation-rl.md":
                    final_metrics["rl"] = extract(section, "GSM8K")
                out_file.write(section)
                out_file.write("\n")
            # summary table
            out_file.write("## Summary\n\n")
            out_file.write(bloat_data)
            out_file.write("\n\n")
            all_metrics = set()
            for stage_metrics in final_metrics.values():
                all_metrics.update(stage_metrics.keys())
            all_metrics = sorted(all_metrics, key=lambda x: (x != "CORE", x == "ChatCORE", x))
            stages = ["base", "mid", "sft", "rl"]
            out_file.write(f"| {'Metric'.ljust(15)} | {' | '.join(s.upper().ljust(8) for s in stages)} |\n")
            out_file.write(f"|{'-' * 17}|{'|'.join('-' * 10 for _ in stages)}|\n")
            for metric in all_metrics:
                values = [str(final_metrics.get(stage, {}).get(metric, "-")).ljust(8) for stage in stages]
                out_file.write(f"| {metric.ljust(15)} | {' | '.join(values)} |\n")
            out_file.write("\n")
            if start_time and end_time:
                duration = end_time - start_time
                total_seconds = int(duration.total_seconds())
                out_file.write(f"Total wall clock time: {total_seconds // 3600}h{(total_seconds % 3600) // 60}m\n")
            else:
                out_file.write("Total wall clock time: unknown\n")
        print("Copying report.md to current directory for convenience")
        shutil.copy(report_file, "report.md")
        return report_file

    def reset(self):
        for file_name in EXPECTED_FILES + ["report.md"]:
            file_path = os.path.join(self.report_dir, file_name)
            if os.path.exists(file_path):
                os.remove(file_path)
        header_file = os.path.join(self.report_dir, "header.md")
        start_time = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with open(header_file, "w", encoding="utf-8") as f:
            f.write(generate_header())
            f.write(f"Run started: {start_time}\n\n---\n\n")
        print(f"Reset report and wrote header to {header_file}")


class DummyReport:
    def log(self, *args, **kwargs):
        pass

    def reset(self, *args, **kwargs):
        pass


def get_report():
    # only rank 0 writes the report
    if int(os.environ.get("RANK", 0)) == 0:
        return Report(os.path.join(get_base_dir(), "report"))
    return DummyReport()


if __name__ == "__main__":
    import argparse

    from nanochat.common import print_fingerprint

    print_fingerprint()
    parser = argparse.ArgumentParser(description="Generate or reset the nanochat training report.")
    parser.add_argument(
        "command",
        nargs="?",
        default="generate",
        choices=["generate", "reset"],
        help="Operation to perform (default: generate)",
    )
    args = parser.parse_args()
    if args.command == "generate":
        get_report().generate()
    else:
        get_report().reset()
