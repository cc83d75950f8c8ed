"""audit-client --server: the same report, output and exit codes as in process."""
from __future__ import annotations

import json

from shiftaudit.client.cli import main
from tests.support import EXAMPLE_IMAGES


def test_cli_through_the_server_same_output_and_exit_codes(server, tmp_path, capsys):
    out = tmp_path / "r.json"
    args = ["--engine", "sub/small.onnx", "--server", server.target, "--no-progress", "--size", "40",
            "--protocol", "embed-black"]
    assert main(args + ["--images", str(EXAMPLE_IMAGES), "--json", str(out), "--max-mac", "1"]) == 0
    local = tmp_path / "l.json"
    assert main(["--engine", str(server.args[2] + "/sub/small.onnx"), "--images", str(EXAMPLE_IMAGES),
                 "--no-progress", "--size", "40", "--protocol", "embed-black", "--json", str(local)]) == 0
    assert json.loads(out.read_text())["protocols"] == json.loads(local.read_text())["protocols"]
    assert main(args + ["--data-path", "photos", "--max-mac", "0"]) == 1
    assert main(args + ["--data-path", "../x"]) == 2
    assert main(["--engine", "fmap.onnx", "--server", server.target, "--data-path", "photos", "--no-progress"]) == 3
    assert main(args) == 2  # neither --images nor --data-path
    err = capsys.readouterr().err
    assert "INVALID_ARGUMENT" in err and "FAILED_PRECONDITION" in err and "Traceback" not in err
