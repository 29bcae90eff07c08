"""backprop._optional: torch, safetensors and onnx are imported only where they are needed, and
a missing one is a MissingDependency naming how to install it from the checkout."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from backprop._optional import MissingDependency, check_device, import_torch, require


@pytest.fixture
def without(monkeypatch):
    """Make the named packages look uninstalled."""

    def hide(*names):
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name in names else real(name, *a)
        )

    return hide


def test_a_missing_package_names_the_checkout_install_and_never_the_index_name(without):
    without("safetensors", "onnx")
    with pytest.raises(MissingDependency) as info:
        require("writing a thing", "safetensors", "onnx")
    text = str(info.value)
    assert text.startswith("writing a thing needs safetensors and onnx, which are not installed")
    assert "python3 -m pip install --break-system-packages '.[torch]'" in text
    assert "in the backprop repository folder" in text
    assert "backprop[" not in text  # `backprop` on the package index is another project
    assert "\n" not in text
    assert isinstance(info.value, ImportError)


def test_torch_is_pinned_in_the_fallback_command(without):
    without("torch")
    with pytest.raises(MissingDependency, match=r"python3 -m pip install torch==2\.13\.0\)"):
        import_torch("the thing")


def test_importing_backprop_imports_no_optional_package():
    program = (
        "import sys, backprop, backprop.pytorch, backprop.compiled;"
        "print(sorted({'torch', 'safetensors', 'onnx'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_check_device():
    pytest.importorskip("torch")
    assert check_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device 'gpu7': use 'cpu'"):
        check_device("gpu7")


def test_check_device_refuses_the_meta_device_and_keeps_torchs_reason_short():
    """device='meta' compiled a program whose first forward() failed with NotImplementedError
    ('Cannot copy out of meta tensor'); an unusable device's reason was torch's whole text."""
    torch = pytest.importorskip("torch")
    for device in ("meta", torch.device("meta")):
        with pytest.raises(ValueError, match="holds no numbers .* use device='cpu'"):
            check_device(device)
    from backprop import Value, compile

    with pytest.raises(ValueError, match="meta"):
        compile(Value(1.0) * 2, backend="torch", device="meta")
    if not torch.backends.mps.is_available():
        with pytest.raises(ValueError) as caught:
            check_device("mps")
        assert "cannot hold float64 tensors" in str(caught.value)
        assert len(str(caught.value)) < 260 and "\n" not in str(caught.value)


def test_a_long_device_name_is_cut_with_a_mark_not_mid_quote():
    """{device!r:.80} cut the repr inside its quotes and said nothing of the rest."""
    pytest.importorskip("torch")
    with pytest.raises(ValueError) as caught:
        check_device("x" * 100_000)
    message = str(caught.value)
    assert "... (100,002 chars): use 'cpu'" in message and len(message) < 200, message
