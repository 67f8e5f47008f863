"""The file from which spares build the fleet's nodes ahead (orchestrator.fleet.prepare_file)."""

from __future__ import annotations

import logging

from orchestrator.fleet.prepare_file import PREPARE_FILE, remove_prepare_file, write_prepare_file
from orchestrator.protocol import codec, kinds
from tests.fleet_support import fleet, node


def test_it_holds_each_node_exactly_as_its_assign_carries_it(tmp_path):
    config = fleet(tmp_path, node("a"), node("b", seed=2))
    path = write_prepare_file(config, tmp_path)
    assert path == tmp_path / PREPARE_FILE and path.stat().st_mode & 0o777 == 0o600
    msg = codec.decode(path.read_bytes())
    assert msg["k"] == kinds.PREPARE
    # The spare takes a prepared node only for an assign.config equal to this one.
    assert msg["nodes"] == {spec.node_id: config.assign_config(spec) for spec in config.nodes}
    remove_prepare_file(tmp_path)
    assert not path.exists()
    remove_prepare_file(tmp_path)  # gone already: fine


def test_a_file_that_cannot_be_written_is_reported_and_the_fleet_goes_without(tmp_path, caplog):
    (tmp_path / PREPARE_FILE).mkdir()  # in the way
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        assert write_prepare_file(fleet(tmp_path, node("a")), tmp_path) is None
    assert "spares will not build the nodes ahead" in caplog.text


def test_a_fleet_with_no_node_has_no_file(tmp_path):
    assert write_prepare_file(fleet(tmp_path), tmp_path) is None
    assert not (tmp_path / PREPARE_FILE).exists()
