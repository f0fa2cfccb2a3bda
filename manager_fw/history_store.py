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

from manager_fw.persist import ENTRY_OVERHEAD, FrameQueue
from manager_fw.ring import FRAME_OVERHEAD, RING_HISTORY, SEGMENT_HEADER_SIZE, Ring
from shared.history import KIND_DELTA, KIND_KEY, Snapshot, SnapshotEncoder, decode_payload
from shared.history_bits import BitReader, BitWriter
from shared.thresholds import ThresholdSet

DEFAULT_SEGMENT_SIZE = 65536
DEFAULT_KEY_SPACING = 16384
DEFAULT_KEY_INTERVAL = 72  # snapshots: at most a day of float-charge records per key frame


def max_payload_bytes(module_count, string_count):
    """The largest snapshot payload a site can make: a key frame with thresholds, or a
    delta in which every field escapes (81 bits a module, 28 a string)."""
    key = 48 + string_count * (16 + 245 + 24) + 68 * module_count
    delta = 8 + 28 * string_count + 81 * module_count
    return ((key if key > delta else delta) + 7) // 8


def queue_bytes(module_count, string_count):
    """RAM for the snapshots waiting to be written: two of the largest (one record per
    cycle at most, and a record waits at most for the erase of one segment)."""
    return 2 * (ENTRY_OVERHEAD + max_payload_bytes(module_count, string_count))


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
        # deferred writing (queue/service): None until enable_queue()
        self.waiting = None
        self.broken = False  # a queued delta's base was not stored: deltas dropped until a key
        self.pred_free = -1  # bytes left in the segment after every queued frame; -1: none
        self.dropped = 0  # queued snapshots given up (their base was lost)
        self._take(0, None, None, None, None, None, None)

    def enable_queue(self, capacity):
        """Write through queue() and service() from now on (manager_fw/persist.py)."""
        self.waiting = FrameQueue(capacity)

    def pending(self):
        return self.waiting.frames if self.waiting is not None else 0

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
        ring = self.ring
        self._take(mode, voltage_uv, temp_mc, ri_nohm, balance_pct, state, string_current_ma)
        key = (
            self.need_key
            or self.since_key >= self.key_spacing
            or self.since_key_count >= self.key_interval
        )
        n = self._encode(None, key, False)
        if not key and ring.would_start_segment(FRAME_OVERHEAD + n):
            key = True
            n = self._encode(None, key, False)
        self.need_key = True  # until this frame is committed
        ring.begin(KIND_KEY if key else KIND_DELTA, time_s, n)
        self._encode(ring, key, True)
        ring.end()
        self.need_key = False
        size = FRAME_OVERHEAD + n
        self._count(key, size)
        self.snapshots_written += 1
        return size

    def _take(self, mode, voltage_uv, temp_mc, ri_nohm, balance_pct, state, current_ma):
        """The snapshot being encoded (attributes, not a tuple: nothing allocates)."""
        self._mode = mode
        self._voltage_uv = voltage_uv
        self._temp_mc = temp_mc
        self._ri_nohm = ri_nohm
        self._balance_pct = balance_pct
        self._state = state
        self._current_ma = current_ma

    def _encode(self, sink, key, update):
        """Encode the snapshot taken into sink (None: only count); its length in bytes."""
        bw = self.bits
        bw.reset(sink)
        return self.encoder.encode(
            bw,
            key,
            self._mode,
            self._voltage_uv,
            self._temp_mc,
            self._ri_nohm,
            self._balance_pct,
            self._state,
            self._current_ma,
            self.thresholds if key else None,
            update,
        )

    def _count(self, key, size):
        if key:
            self.since_key = size
            self.since_key_count = 1
            self.key_frames += 1
        else:
            self.since_key += size
            self.since_key_count += 1

    # -- deferred: the core queues in its step, the shell writes outside it -----------

    def queue(self, time_s, mode, voltage_uv, temp_mc, ri_nohm, balance_pct, state, current_ma):
        """Encode one snapshot into the queue, no device access; False when the queue is
        full (the snapshot is not stored; the next delta builds on the last queued one).

        Key frames follow the rules of append(); whether a frame opens a new segment is
        predicted from the ring and the frames queued before it (exact unless a write
        fails; service() drops a delta that would open a segment all the same)."""
        q = self.waiting
        if q is None:
            raise ValueError("no queue: call enable_queue() first")
        if not q.frames:
            ring = self.ring
            self.pred_free = -1 if ring.sealed else (ring.seg + 1) * ring.segment_size - ring.pos
        key = (
            self.need_key
            or self.since_key >= self.key_spacing
            or self.since_key_count >= self.key_interval
        )
        self._take(mode, voltage_uv, temp_mc, ri_nohm, balance_pct, state, current_ma)
        n = self._encode(None, key, False)
        if not key and self.pred_free < FRAME_OVERHEAD + n:
            key = True
            n = self._encode(None, key, False)
        if not q.begin(KIND_KEY if key else KIND_DELTA, time_s, n):
            return False
        self._encode(q, key, True)
        q.end()
        size = FRAME_OVERHEAD + n
        if self.pred_free < size:
            self.pred_free = self.ring.segment_size - SEGMENT_HEADER_SIZE - size
        else:
            self.pred_free -= size
        self.need_key = False
        self._count(key, size)
        return True

    def service(self, max_ops=1):
        """Write queued snapshots: at most max_ops device operations (one block erase or
        one frame each).  Raises what the device raises (the frame is then given up);
        returns the snapshots still queued."""
        return self.ring.drain(self.waiting, max_ops, self)

    def _drop(self, kind, size):  # Ring.drain's hooks
        if kind == KIND_DELTA and (self.broken or self.ring.would_start_segment(size)):
            # its base is not in the store (or it would open a segment)
            self.dropped += 1
            self._failed()
            return True
        return False

    def _written(self, kind):
        if kind == KIND_KEY:
            self.broken = False
        self.snapshots_written += 1

    def _failed(self):
        self.broken = True
        self.need_key = True

    def discard(self):
        """Give up every queued snapshot (after a failed write); returns how many."""
        self.need_key = True
        self.broken = True
        return self.waiting.clear() if self.waiting is not None else 0


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
