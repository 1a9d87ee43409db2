#!/usr/bin/env python3
"""Write the crafted seeds of the checkpoint fuzz target into fuzz/corpus/checkpoint/.

PyTorch is not needed: the pickles are written by Python's own pickler with stand-ins for
the few torch names a state dict refers to (`torch._utils._rebuild_tensor_v2` and the
storage types), and storages are referred to by persistent id, as torch.save does. The
seeds cover the ZIP format (STORED and DEFLATE entries), the legacy torch.save stream, every
float element type the reader converts, a tied view, a checkpoint nesting its state dict,
and three refusals: a cut-off ZIP, a pickle with an unknown opcode and one naming os.system.

Two seeds come from files written by real writers: `icgan_state_dict_best0` is the official
fixture `models/icgan_biggan_ch8_res128/state_dict_best0.pth` (written by PyTorch), copied
when `--fixtures` is given, and `burnpack_audio_encoder` is the bundled
`assets/models/sound2scene-tiny/audio_encoder.bpk` (written by
`sound2scene_models::burnpack::save`) cut down to its first three tensors: its header and
metadata (network, configuration) are kept as written, and the tensors are laid out again
the way burnpack aligns them.

Usage: scripts/make_checkpoint_corpus.py [--fixtures ../shared/fixtures]
"""

import argparse
import collections
import io
import pathlib
import pickle
import shutil
import struct
import sys
import types
import zipfile

OUT = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "checkpoint"

# Stand-ins for the torch names a state dict pickle refers to. Only their module and name
# are written; nothing here is ever called.
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")


def _rebuild_tensor_v2(*args):
    raise NotImplementedError("a stand-in: only its name is pickled")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
sys.modules["torch"] = torch
sys.modules["torch._utils"] = torch_utils

# Element type: (storage type name, struct format, bytes per element).
DTYPES = {
    "f32": ("FloatStorage", "<f", 4),
    "f64": ("DoubleStorage", "<d", 8),
    "f16": ("HalfStorage", "<e", 2),
    "bf16": ("BFloat16Storage", None, 2),
    "i64": ("LongStorage", "<q", 8),
}
for storage_name, _, _ in DTYPES.values():
    storage_type = type(storage_name, (), {"__module__": "torch"})
    setattr(torch, storage_name, storage_type)


def encode(dtype, values):
    """Little-endian bytes of `values` in `dtype` (bf16: the top half of each f32)."""
    _, fmt, _ = DTYPES[dtype]
    if fmt is None:
        return b"".join(struct.pack("<f", v)[2:] for v in values)
    return b"".join(struct.pack(fmt, v) for v in values)


class Storage:
    """One storage: its key in the file, element type and values."""

    def __init__(self, key, dtype, values):
        self.key, self.dtype, self.values = key, dtype, list(values)

    def data(self):
        return encode(self.dtype, self.values)


class Tensor:
    """A view of a storage; pickles as `_rebuild_tensor_v2(storage, offset, size, stride, ...)`."""

    def __init__(self, storage, size, offset=0, stride=None):
        if stride is None:
            stride, step = [], 1
            for extent in reversed(size):
                stride.insert(0, step)
                step *= extent
        self.storage, self.size, self.offset, self.stride = storage, size, offset, stride

    def __reduce_ex__(self, protocol):
        args = (
            self.storage,
            self.offset,
            tuple(self.size),
            tuple(self.stride),
            False,
            collections.OrderedDict(),
        )
        return (_rebuild_tensor_v2, args)


class StatePickler(pickle.Pickler):
    """Writes storages as persistent ids; `legacy` adds the view metadata slot."""

    def __init__(self, file, legacy=False):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        storage_type = getattr(torch, DTYPES[obj.dtype][0])
        record = ("storage", storage_type, obj.key, "cpu", len(obj.values))
        return record + (None,) if self.legacy else record


def pickled(obj, legacy=False):
    buffer = io.BytesIO()
    StatePickler(buffer, legacy).dump(obj)
    return buffer.getvalue()


def storages_of(obj):
    found = {}

    def walk(value):
        if isinstance(value, Tensor):
            found[value.storage.key] = value.storage
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(obj)
    return [found[key] for key in sorted(found)]


def torch_zip(obj, compression=zipfile.ZIP_STORED, pickle_bytes=None):
    """A ZIP checkpoint in the layout torch.save writes (folder `archive/`)."""
    entries = [("data.pkl", pickle_bytes or pickled(obj)), ("byteorder", b"little")]
    entries += [(f"data/{s.key}", s.data()) for s in storages_of(obj)]
    entries.append(("version", b"3\n"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            # A fixed date, so that the seeds are the same bytes on every run.
            info = zipfile.ZipInfo(f"archive/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def legacy(obj):
    """The legacy torch.save stream: five pickles, then each storage as a u64 count and data."""
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    storages = storages_of(obj)
    parts = [
        pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps(sys_info, protocol=2),
        pickled(obj, legacy=True),
        pickle.dumps([s.key for s in storages], protocol=2),
    ]
    for storage in storages:
        parts.append(struct.pack("<q", len(storage.values)) + storage.data())
    return b"".join(parts)


def small_state_dict():
    weight = Storage("0", "f32", [0.5, -1.0, 2.0, 0.25, 3.5, -0.125])
    bias = Storage("1", "f32", [0.1, 0.2, 0.3])
    return collections.OrderedDict(
        [("fc.weight", Tensor(weight, [3, 2])), ("fc.bias", Tensor(bias, [3]))]
    )


def every_dtype():
    shared = Storage("0", "f32", [1.0, 2.0, 3.0, 4.0])
    return collections.OrderedDict(
        [
            ("conv.weight", Tensor(shared, [2, 2])),
            ("tied.view", Tensor(shared, [2], offset=1, stride=[2])),
            ("half.weight", Tensor(Storage("1", "f16", [1.0, -2.0, 0.5]), [3])),
            ("bf16.weight", Tensor(Storage("2", "bf16", [1.5, -0.75]), [2])),
            ("double.weight", Tensor(Storage("3", "f64", [0.1, 0.2]), [1, 2])),
            ("bn.num_batches_tracked", Tensor(Storage("4", "i64", [7]), [])),
        ]
    )


def cbor_decode(data, at=0):
    """One CBOR item (the subset burnpack metadata uses) from `data[at:]`: (value, end)."""
    head, at = data[at], at + 1
    major, info = head >> 5, head & 31
    if major == 7:
        return {20: False, 21: True, 22: None}[info], at
    if info < 24:
        arg = info
    else:
        width = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        arg, at = int.from_bytes(data[at : at + width], "big"), at + width
    if major == 0:
        return arg, at
    if major == 1:
        return -1 - arg, at
    if major in (2, 3):
        raw = data[at : at + arg]
        return (raw if major == 2 else raw.decode()), at + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, at = cbor_decode(data, at)
            items.append(item)
        return items, at
    if major == 5:
        entries = {}
        for _ in range(arg):
            key, at = cbor_decode(data, at)
            entries[key], at = cbor_decode(data, at)
        return entries, at
    raise ValueError(f"CBOR major type {major} is not used by burnpack metadata")


def cbor_encode(value):
    def head(major, arg):
        if arg < 24:
            return bytes([major << 5 | arg])
        for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if arg < 1 << (8 * width):
                return bytes([major << 5 | info]) + arg.to_bytes(width, "big")
        raise ValueError(arg)

    if value is None or isinstance(value, bool):
        return bytes([0xF6 if value is None else 0xF5 if value else 0xF4])
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        return head(3, len(value.encode())) + value.encode()
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        body = b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
        return head(5, len(value)) + body
    raise TypeError(type(value))


def align(offset, to=256):
    return (offset + to - 1) // to * to


def trimmed_burnpack(path, keep=3):
    """The burnpack file at `path` with only its first `keep` tensors (by name)."""
    data = path.read_bytes()
    magic, version, metadata_size = struct.unpack("<IHI", data[:10])
    metadata, _ = cbor_decode(data, 10)
    data_start = align(10 + metadata_size)
    tensors, payload = {}, b""
    for name in sorted(metadata["tensors"])[:keep]:
        descriptor = dict(metadata["tensors"][name])
        start, end = descriptor["data_offsets"]
        payload += bytes(align(len(payload)) - len(payload))
        descriptor["data_offsets"] = [len(payload), len(payload) + end - start]
        payload += data[data_start + start : data_start + end]
        tensors[name] = descriptor
    encoded = cbor_encode({"tensors": tensors, "metadata": metadata["metadata"]})
    header = struct.pack("<IHI", magic, version, len(encoded)) + encoded
    return header + bytes(align(len(header)) - len(header)) + payload


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=pathlib.Path, help="the official fixtures folder")
    bundled = OUT.parent.parent.parent / "assets/models/sound2scene-tiny/audio_encoder.bpk"
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    good = torch_zip(small_state_dict())
    nested = {"state_dict": small_state_dict(), "epoch": 3, "arch": "resnet18"}
    seeds = {
        "zip_f32": good,
        "zip_deflate": torch_zip(small_state_dict(), zipfile.ZIP_DEFLATED),
        "zip_every_dtype_tied": torch_zip(every_dtype()),
        "zip_nested_state_dict": torch_zip(nested),
        "legacy_f32": legacy(small_state_dict()),
        # Cut inside the central directory: the reader must refuse it.
        "zip_truncated": good[: len(good) - 40],
        # A pickle whose fourth byte is not an opcode.
        "zip_bad_opcode": torch_zip(small_state_dict(), pickle_bytes=b"\x80\x02}\xff."),
        # A bare pickle calling os.system: refused before anything is read.
        "pickle_os_system": b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00echo\x85R.",
        "burnpack_audio_encoder": trimmed_burnpack(bundled),
    }
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    if args.fixtures:
        source = args.fixtures / "models/icgan_biggan_ch8_res128/state_dict_best0.pth"
        shutil.copyfile(source, OUT / "icgan_state_dict_best0")
        print(f"icgan_state_dict_best0: copied from {source}")


if __name__ == "__main__":
    main()
