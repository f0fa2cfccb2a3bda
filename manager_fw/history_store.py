# The manager's history: snapshots of every module (shared/history.py codec) in a
# power-loss-safe ring (manager_fw/ring.py) on a block device (manager_fw/blockdev.py).
#
#   writer = HistoryWriter(device, string_sizes)            # opens or creates the store
#   writer.append(now_s, MODE_FLOAT, voltage_uv, temp_mc, ri_nohm, balance_pct, state,
#                 string_current_ma)                        # live units, arrays by module
#
#   for snap in HistoryReader(device).snapshots(): ...      # oldest first, history units
#
# Key frames: the first snapshot of every segment (so erasing the oldest segment never
# orphans a delta), the first after opening, after a layout or threshold change, after a
# failed write, and whenever key_spacing bytes or key_interval snapshots have passed
# since the last one (bounds what one damaged frame can take with it).  Writer state:
# the encoder's base, 10 bytes per module; nothing allocates per snapshot.

from manager_fw.ring import FRAME_OVERHEAD, RING_HISTORY, Ring
from shared.history import (
    KIND_DELTA,
    KIND_KEY,
    BitReader,
    BitWriter,
    Snapshot,
    SnapshotEncoder,
    decode_payload,
)
from shared.thresholds import ThresholdSet

DEFAULT_SEGMENT_SIZE = 65536
DEFAULT_KEY_SPACING = 16384
DEFAULT_KEY_INTERVAL = 72  # snapshots: at most a day of float-charge records per key frame


class HistoryWriter:
    def __init__(
        self,
        device,
        string_sizes,
        segment_size=DEFAULT_SEGMENT_SIZE,
        key_spacing=DEFAULT_KEY_SPACING,
        erase_foreign=False,
        key_interval=DEFAULT_KEY_INTERVAL,
    ):
        self.ring = Ring(device, RING_HISTORY, segment_size, erase_foreign)
        self.encoder = SnapshotEncoder(string_sizes)
        self.bits = BitWriter(64)
        self.key_spacing = key_spacing
        self.key_interval = key_interval
        self.since_key_count = 0
        self.thresholds = None
        self.need_key = True
        self.since_key = 0
        self.snapshots_written = 0
        self.key_frames = 0

    @property
    def module_count(self):
        return self.encoder.module_count

    def set_layout(self, string_sizes):
        """Modules per string changed (configuration): the next snapshot is a key frame."""
        self.encoder.set_layout(string_sizes)
        if self.thresholds is not None and len(self.thresholds) != len(string_sizes):
            self.thresholds = None
        self.need_key = True

    def set_thresholds(self, thresholds):
        """Thresholds in force (one ThresholdSet, or one per string, or None); stored in
        key frames so that exports draw the levels that applied."""
        if isinstance(thresholds, ThresholdSet):
            thresholds = [thresholds] * self.encoder.string_count
        elif thresholds is not None:
            thresholds = list(thresholds)
            if len(thresholds) != self.encoder.string_count:
                raise ValueError(
                    "need one ThresholdSet per string (%d), got %d"
                    % (self.encoder.string_count, len(thresholds))
                )
        self.thresholds = thresholds
        self.need_key = True

    def append(
        self,
        time_s,
        mode,
        voltage_uv,
        temp_mc,
        ri_nohm,
        balance_pct,
        state,
        string_current_ma,
    ):
        """Store one snapshot of every module; returns the bytes it took on the device.

        Arrays are indexed by module (voltage µV, temperature milli-°C, Ri nΩ with 0 =
        not measured, balance level %, state code 0..15) and by string (current mA,
        shared.history.CURRENT_NONE without a sensor).  time_s: StringCare seconds.
        """
        enc = self.encoder
        bw = self.bits
        ring = self.ring
        key = (
            self.need_key
            or self.since_key >= self.key_spacing
            or self.since_key_count >= self.key_interval
        )
        th = self.thresholds if key else None
        bw.reset(None)
        n = enc.encode(
            bw,
            key,
            mode,
            voltage_uv,
            temp_mc,
            ri_nohm,
            balance_pct,
            state,
            string_current_ma,
            th,
            False,
        )
        if not key and ring.would_start_segment(FRAME_OVERHEAD + n):
            key = True
            th = self.thresholds
            bw.reset(None)
            n = enc.encode(
                bw,
                key,
                mode,
                voltage_uv,
                temp_mc,
                ri_nohm,
                balance_pct,
                state,
                string_current_ma,
                th,
                False,
            )
        self.need_key = True  # until this frame is committed
        ring.begin(KIND_KEY if key else KIND_DELTA, time_s, n)
        bw.reset(ring)
        enc.encode(
            bw,
            key,
            mode,
            voltage_uv,
            temp_mc,
            ri_nohm,
            balance_pct,
            state,
            string_current_ma,
            th,
            True,
        )
        ring.end()
        self.need_key = False
        size = FRAME_OVERHEAD + n
        if key:
            self.since_key = size
            self.since_key_count = 1
            self.key_frames += 1
        else:
            self.since_key += size
            self.since_key_count += 1
        self.snapshots_written += 1
        return size


class HistoryReader:
    """Every decodable snapshot of a history store, oldest first.

    snapshots() yields one shared.history.Snapshot updated in place (copy what you
    keep).  After the loop, `problems` lists damage (with offsets) and the snapshots
    it made undecodable; `notes` what a power cut left (harmless).
    """

    def __init__(self, device):
        from manager_fw.ring_reader import RingReader

        self.ring = RingReader(device, RING_HISTORY, (KIND_KEY, KIND_DELTA))
        self.problems = self.ring.problems
        self.notes = self.ring.notes
        self.undecodable = 0

    def snapshots(self):
        snap = Snapshot()
        reader = BitReader()
        lost_first = -1
        lost_last = -1
        lost = 0
        for offset, kind, time_s, payload, length, gap in self.ring.frames():
            if gap:
                snap.valid = False
            if kind == KIND_DELTA and not snap.valid:
                if lost == 0:
                    lost_first = offset
                lost_last = offset
                lost += 1
                continue
            if lost:
                self._lost(lost, lost_first, lost_last)
                lost = 0
            try:
                decode_payload(kind, payload, length, snap, reader)
            except ValueError as exc:
                snap.valid = False
                self.undecodable += 1
                self.problems.append("snapshot at 0x%x cannot be decoded: %s" % (offset, exc))
                continue
            snap.time_s = time_s
            snap.offset = offset
            yield snap
        if lost:
            self._lost(lost, lost_first, lost_last)

    def _lost(self, count, first, last):
        self.undecodable += count
        self.problems.append(
            "%d snapshot(s) at 0x%x-0x%x cannot be decoded: the key frame they build on is "
            "damaged or gone" % (count, first, last)
        )
