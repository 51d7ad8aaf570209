"""The overlay video is browser-playable H.264: decodes with PyAV, codec h264, yuv420p, even size, every frame."""

from __future__ import annotations

import av
import numpy as np
import pytest

from anograph.serving.alerts import Alert
from anograph.serving.overlay import H264Writer, write_overlay_video


def _scene(n_frames: int, width: int, height: int):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(n_frames)]
    object_frames = np.repeat(np.arange(n_frames), 2)
    object_boxes = np.tile(np.array([[2.0, 2.0, 20.0, 20.0], [25.0, 10.0, 40.0, 30.0]]), (n_frames, 1))
    object_scores = rng.random(len(object_frames))
    frame_scores = object_scores.reshape(n_frames, 2).max(axis=1)
    frame_scores[3] = np.nan  # a frame without objects
    return frames, frame_scores, object_frames, object_boxes, object_scores


@pytest.mark.parametrize(("width", "height"), [(64, 48), (65, 47)])
def test_overlay_is_h264_with_every_frame_and_even_size(tmp_path, width, height):
    n_frames = 17
    frames, frame_scores, object_frames, object_boxes, object_scores = _scene(n_frames, width, height)
    alert = Alert(video="clip", start_frame=5, end_frame=9, start_seconds=0.5, end_seconds=1.0, peak_frame=7,
                  peak_score=1.0, mean_score=0.9, n_over_frames=5, threshold=0.8, top_objects=[])
    path = tmp_path / "overlay.mp4"
    written = write_overlay_video(path, iter(frames), 10.0, frame_scores, object_frames, object_boxes,
                                  object_scores, threshold=0.8, alerts=[alert])
    assert written == n_frames
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.width % 2 == 0 and stream.codec_context.height % 2 == 0
        assert stream.codec_context.width == width + width % 2
        assert stream.codec_context.height > height  # the score strip is below the frame
        assert float(stream.average_rate) == pytest.approx(10.0)
        decoded = list(container.decode(stream))
    assert len(decoded) == n_frames
    # The picture is the source frame (H.264 is lossy: compare loosely on a flat region).
    first = decoded[0].to_ndarray(format="bgr24")[:height, :width]
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 60


def test_odd_dimensions_are_refused_by_the_writer(tmp_path):
    with pytest.raises(ValueError, match="even dimensions"):
        H264Writer(tmp_path / "x.mp4", 10.0, (65, 48))
