"""Writes one analysed segment (segment, tracks, detections, images) into the catalog.

Repositories never commit: the ingest use case owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import cv2
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from footage.catalog import Detection, Embedding, Segment, Track, Video, VideoChunk
from indexer.values import Image, SegmentResult, TrackSighting


def save_jpeg(media_dir: Path, relative: str, image: Image) -> str:
    path = media_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.jpg")
    if not cv2.imwrite(
        str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    ):
        raise OSError(f"could not write {path}")
    tmp.replace(path)
    return relative


def forget_contents(session: Session, video_id: int) -> None:
    """Remove what an earlier, unfinished run wrote for this video."""
    for model in (Embedding, Detection, Track, Segment, VideoChunk):
        session.execute(delete(model).where(model.video_id == video_id))


@dataclass
class SegmentWriter:
    video: Video
    started_at: datetime
    media_dir: Path
    track_ids: dict[int, int] = field(default_factory=dict)

    def _at(self, seconds: float) -> datetime:
        return self.started_at + timedelta(seconds=seconds)

    def write(self, session: Session, result: SegmentResult) -> Segment:
        """The segment's row, its tracks merged, its detections; flushed, so ids are set."""
        segment = self._segment(result)
        session.add(segment)
        for sighting in result.sightings:
            self._merge_track(session, sighting)
        session.flush()
        rows = self._detection_rows(segment.id, result)
        if rows:
            session.execute(insert(Detection), rows)
        return segment

    def _segment(self, result: SegmentResult) -> Segment:
        video = self.video
        thumb = None
        if result.thumbnail is not None:
            thumb = save_jpeg(
                self.media_dir,
                f"{video.id}/segment_{round(result.start_s * 1000):010d}.jpg",
                result.thumbnail,
            )
        return Segment(
            video_id=video.id,
            camera_id=video.camera_id,
            start_at=self._at(result.start_s),
            end_at=self._at(result.end_s),
            start_s=result.start_s,
            end_s=result.end_s,
            frames=result.frames,
            motion=result.motion,
            analysed=result.analysed,
            thumbnail=thumb,
            keyframe_s=result.thumbnail_s,
            description=result.description,
        )

    def _crop(self, sighting: TrackSighting) -> str | None:
        """The track's best view so far as a JPEG, when this segment improved it."""
        if sighting.best_crop is None or not sighting.best_crop.size:
            return None
        relative = f"{self.video.id}/track_{sighting.track_no}.jpg"
        return save_jpeg(self.media_dir, relative, sighting.best_crop)

    def _merge_track(self, session: Session, sighting: TrackSighting) -> None:
        crop_path = self._crop(sighting)
        track_id = self.track_ids.get(sighting.track_no)
        if track_id is None:
            self._new_track(session, sighting, crop_path)
            return
        track = session.get_one(Track, track_id)
        track.last_at = self._at(sighting.last_s)
        track.last_s = sighting.last_s
        track.detections += sighting.count
        track.best_confidence = max(track.best_confidence, sighting.best_confidence)
        track.color = sighting.color
        if crop_path:
            track.crop, track.best_s = crop_path, sighting.best_s

    def _new_track(self, session: Session, sighting: TrackSighting, crop_path: str | None) -> None:
        video = self.video
        track = Track(
            video_id=video.id,
            camera_id=video.camera_id,
            track_no=sighting.track_no,
            label=sighting.label,
            first_at=self._at(sighting.first_s),
            last_at=self._at(sighting.last_s),
            first_s=sighting.first_s,
            last_s=sighting.last_s,
            detections=sighting.count,
            best_confidence=sighting.best_confidence,
            color=sighting.color,
            crop=crop_path,
            best_s=sighting.best_s,
        )
        session.add(track)
        session.flush()
        self.track_ids[sighting.track_no] = track.id

    def _detection_rows(self, segment_id: int, result: SegmentResult) -> list[dict[str, object]]:
        video = self.video
        return [
            {
                "segment_id": segment_id,
                "video_id": video.id,
                "camera_id": video.camera_id,
                "track_id": self.track_ids.get(no) if no >= 0 else None,
                "at": self._at(frame.t),
                "offset_s": frame.t,
                "label": label,
                "confidence": float(conf),
                "x1": float(box[0]),
                "y1": float(box[1]),
                "x2": float(box[2]),
                "y2": float(box[3]),
                "color": color,
            }
            for frame in result.analysed_frames
            for box, conf, label, no, color in zip(
                frame.detections.xyxy,
                frame.detections.confidence,
                frame.detections.label,
                frame.detections.track_nos.tolist(),
                frame.detections.colors,
                strict=True,
            )
        ]
