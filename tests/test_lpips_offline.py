"""LPIPS when its weights cannot be downloaded: a network that never answers costs a trial seconds, not for ever."""

import socket
import threading
import urllib.request

from nerftune.nerf import lpips


def test_a_download_that_never_answers_gives_up_and_lpips_is_empty(tmp_path, monkeypatch):
    """Through a proxy that takes the connection and says nothing (as a firewall or a dead proxy does), the real
    torchmetrics -> torchvision -> torch hub download times out, and LPIPS becomes unavailable."""
    import torch

    silent = socket.create_server(("127.0.0.1", 0))  # the kernel accepts connections; nobody ever answers
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen reads the proxy when it builds its opener
    monkeypatch.setattr(lpips, "_failure", None)
    monkeypatch.setattr(lpips, "DOWNLOAD_TIMEOUT_S", 1.0)
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))  # no cached weights
    made = []
    try:
        attempt = threading.Thread(target=lambda: made.append(lpips.lpips_or_unavailable(net_type="alex")), daemon=True)
        attempt.start()
        attempt.join(timeout=60)
    finally:
        torch.hub.set_dir(hub)
        silent.close()
    assert made, "the download still waits"
    assert isinstance(made[0], lpips.UnavailableLPIPS)
    assert "timed out" in lpips.lpips_unavailable_reason()
    assert socket.getdefaulttimeout() is None, "the process's default socket timeout is put back"
