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

from footage.catalog import (
    Detection,
    Embedding,
    Segment,
    SegmentObject,
    Track,
    Video,
    VideoChunk,
)
from indexer.movement import MovementFacts
from indexer.summary import summary_rows
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
    for model in (Embedding, SegmentObject, Detection, Track, Segment, VideoChunk):
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
        for track_no, facts in result.closed:
            if (track_id := self.track_ids.get(track_no)) is not None:
                track = session.get_one(Track, track_id)
                for name, value in movement_values(facts).items():
                    setattr(track, name, value)
        session.flush()
        rows = self._detection_rows(segment.id, result)
        if rows:
            session.execute(insert(Detection), rows)
            video = self.video  # the summary filters read (segment_objects), with them
            session.execute(
                insert(SegmentObject), summary_rows(result, segment.id, video.id, video.camera_id)
            )
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

    def _views(self, sighting: TrackSighting) -> dict[str, object]:
        """The track's best view so far (crop, picture, box) as JPEGs and columns, when
        this segment improved it; nothing otherwise."""
        if sighting.best_crop is None or not sighting.best_crop.size:
            return {}
        base = f"{self.video.id}/track_{sighting.track_no}"
        views: dict[str, object] = {
            "crop": save_jpeg(self.media_dir, f"{base}.jpg", sighting.best_crop),
            "best_s": sighting.best_s,
        }
        if sighting.best_frame is not None:
            views["frame"] = save_jpeg(self.media_dir, f"{base}_frame.jpg", sighting.best_frame)
        if sighting.best_box is not None:
            x1, y1, x2, y2 = sighting.best_box
            views.update(best_x1=x1, best_y1=y1, best_x2=x2, best_y2=y2)
        return views

    def _merge_track(self, session: Session, sighting: TrackSighting) -> None:
        values = {**self._views(sighting), **movement_columns(sighting)}
        track_id = self.track_ids.get(sighting.track_no)
        if track_id is None:
            self._new_track(session, sighting, values)
            return
        track = session.get_one(Track, track_id)
        track.last_at = self._at(sighting.last_s)
        track.last_s = sighting.last_s
        track.detections += sighting.count
        track.best_confidence = max(track.best_confidence, sighting.best_confidence)
        track.color = sighting.color
        track.label = sighting.label  # by votes so far
        for name, value in values.items():
            setattr(track, name, value)

    def _new_track(
        self, session: Session, sighting: TrackSighting, values: dict[str, object]
    ) -> None:
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
            **values,
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
                "moving": moving,
            }
            for frame in result.analysed_frames
            for box, conf, label, no, color, moving in zip(
                frame.detections.xyxy,
                frame.detections.confidence,
                frame.detections.label,
                frame.detections.track_nos.tolist(),
                frame.detections.colors,
                frame.detections.movings,
                strict=True,
            )
        ]


def movement_columns(sighting: TrackSighting) -> dict[str, object]:
    """How the track moved so far, as its row's columns."""
    return movement_values(sighting.movement) if sighting.movement is not None else {}


def movement_values(facts: MovementFacts) -> dict[str, object]:
    return {
        "movement": facts.movement.value,
        "moving_s": facts.moving_s,
        "stationary_s": facts.stationary_s,
        "entered": facts.entered.value,
        "exited": facts.exited.value,
        "direction": facts.direction.value if facts.direction else None,
    }
