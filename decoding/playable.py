"""Whether a browser plays a video file as it is: its container, its codecs, and a
stream its decoder takes.

Browsers play H.264, VP9 and AV1 in MP4, VP8, VP9 and AV1 in WebM, in 8-bit 4:2:0, with
AAC, MP3, Opus or Vorbis sound. Everything else (MJPEG or MPEG-4 Part 2 in AVI, HEVC,
10-bit or 4:4:4 pictures, Matroska with other codecs) needs a preview. Browsers'
decoders also refuse streams FFmpeg decodes past its own complaints (a non-intra slice
in an IDR picture, as some muxers write): a stream whose first packets make FFmpeg log
an error needs one too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import av.logging

# FFmpeg's demuxer names, by the family a browser plays.
_MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
_MATROSKA = "matroska,webm"
VIDEO_CODECS = {_MP4: {"h264", "vp9", "av1"}, _MATROSKA: {"vp8", "vp9", "av1"}}
AUDIO_CODECS = {_MP4: {"aac", "mp3", "opus"}, _MATROSKA: {"vorbis", "opus"}}
PIXEL_FORMATS = {"yuv420p", "yuvj420p"}
# Packets of the first video stream decoded to look for the decoder's complaints.
CHECKED_PACKETS = 48


@dataclass(frozen=True)
class Playability:
    """Whether a browser plays the file as it is, and why not when it does not."""

    plays: bool
    why: str  # what makes it playable or not, for the log and the store


def browser_playability(path: str | os.PathLike[str]) -> Playability:
    """Whether a browser plays the video at ``path`` as it is (see the module docstring).
    A file PyAV cannot open is not playable."""
    try:
        with av.open(os.fspath(path)) as container:
            return _judge(container)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        return Playability(False, f"not readable as a video: {exc}")


def _judge(container: av.container.InputContainer) -> Playability:
    family = container.format.name
    videos = [s for s in container.streams.video if not _attached_picture(s)]
    if not videos:
        return Playability(False, "no video stream")
    video = videos[0]
    codec = video.codec_context.codec.canonical_name
    if family not in VIDEO_CODECS:
        return Playability(False, f"container {family!r} is not MP4 or WebM")
    if codec not in VIDEO_CODECS[family]:
        return Playability(False, f"video codec {codec!r} in {family!r}")
    pixels = video.codec_context.pix_fmt
    if pixels not in PIXEL_FORMATS:
        return Playability(False, f"pixel format {pixels!r}")
    for audio in container.streams.audio:
        sound = audio.codec_context.codec.canonical_name
        if sound not in AUDIO_CODECS[family]:
            return Playability(False, f"audio codec {sound!r} in {family!r}")
    complaint = _decoder_complaint(container, video)
    if complaint is not None:
        return Playability(False, f"the decoder reports {complaint!r}")
    return Playability(True, f"{codec} in {family!r}")


def _attached_picture(stream: av.video.stream.VideoStream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _decoder_complaint(
    container: av.container.InputContainer, video: av.video.stream.VideoStream
) -> str | None:
    """The first error FFmpeg logs while decoding the stream's first packets."""
    previous, skipped = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    # PyAV drops a message equal to the last one it saw: a second file with the same
    # fault would pass as clean.
    av.logging.set_skip_repeated(False)
    try:
        with av.logging.Capture() as logs:
            try:
                for count, packet in enumerate(container.demux(video)):
                    packet.decode()
                    if count >= CHECKED_PACKETS:
                        break
            except av.FFmpegError as exc:
                return str(exc)
    finally:
        av.logging.set_skip_repeated(skipped)
        av.logging.set_level(previous)
    errors = [text for level, _, text in logs if level <= av.logging.ERROR]
    return errors[0].strip() if errors else None
