"""Job logs of a twenty-eighth round of real evidence (logs committed in upstream nanochat's pull requests), as
shapes written here in our own words: an SFT that went NaN because its rows were shorter than the conversations."""

from __future__ import annotations

from tests.clirun import verify_logs

STEP = "step {:05d} (0.00%) | loss: {} | lrm: 1.00 | dt: 5.20ms | tok/sec: 24,595 | mfu: 0.00 | epoch: 1\n"


def _sft_log(tmp_path, seq: int):
    # a tiny base model (max_seq_len 128) fine-tuned on a small GPU: SFT inherits the 128, SmolTalk's conversations
    # do not fit a row of 129 tokens, the best-fit packer's buffer clogs with them, rows of padding only follow, and
    # the loss over zero targets is NaN from step 9 on (progress stays at 0.00%)
    log = tmp_path / "sft_run.log"
    log.write_text(
        "Loading model from /home/u/.cache/nanochat/base_checkpoints/d2 with step 10\n"
        f"Inherited max_seq_len={seq} from pretrained checkpoint\n"
        f"Tokens / micro-batch / rank: 1 x {seq} = {seq:,}\n"
        f"Total batch size {seq} => gradient accumulation steps: 1\n"
        "Training mixture: 1,071,840 rows (MMLU x3, GSM8K x4)\n"
        "Step 00000 | Validation bpb: 3.3084\n"
        + "".join(STEP.format(n, f"{5 + n / 3:.6f}" if n < 9 else "nan") for n in range(1, 134))
    )
    return log


def test_an_sft_nan_on_a_short_inherited_sequence_is_the_packer_not_the_learning_rate(tmp_path, cli):
    report, checks, phases = verify_logs(cli, tmp_path, _sft_log(tmp_path, 128))
    assert phases["sft"]["status"] == "failed", phases["sft"]
    (nan,) = checks["LOG007"]["findings"]
    assert (
        "sft ran with max_seq_len 128 (inherited from the base model unless set): conversations longer than 129 "
        in (nan["message"])
    ), nan
    assert nan["fix"].startswith("rerun sft with --max-seq-len=2048"), nan

    # at 2048 the packer places nearly every conversation: the usual advice stands
    _report, checks, _phases = verify_logs(cli, tmp_path, _sft_log(tmp_path, 2048))
    (nan,) = checks["LOG007"]["findings"]
    assert "max_seq_len" not in nan["message"] and "lower learning rate" in nan["fix"], nan
