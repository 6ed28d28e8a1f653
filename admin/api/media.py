"""Pictures and files people send customers: uploaded in the panel, kept under the data
directory, served at an unguessable public address (`GET /media/<name>`) that the platforms
fetch or the customer opens. The type is read from the file's first bytes, not trusted from
its name; anything else is refused with the kinds that are taken."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, File, HTTPException, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel

from admin.api.deps import ApiContext, api_context, require_role
from admin.api.errors import errors
from channels.files import MEDIA_TYPES
from crm_core import audit
from crm_core.models import Role, User

router = APIRouter(prefix="/media", tags=["media"])
public = APIRouter()
MAX_BYTES = 10 * 1024 * 1024
# (first bytes, extension, kind); the media types are channels.files.MEDIA_TYPES
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", ".png", "image"),
    (b"\xff\xd8\xff", ".jpg", "image"),
    (b"GIF87a", ".gif", "image"),
    (b"GIF89a", ".gif", "image"),
    (b"%PDF-", ".pdf", "file"),
)
ZIP_DOCUMENTS = (".docx", ".xlsx", ".pptx")


class Uploaded(BaseModel):
    url: str
    kind: str          # image: sent as a picture; file: sent as its link
    name: str
    size: int


def _kind(head: bytes, filename: str) -> tuple[str, str] | None:
    for signature, ext, kind in SIGNATURES:
        if head.startswith(signature):
            return ext, kind
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ".webp", "image"
    suffix = Path(filename).suffix.lower()
    if head.startswith(b"PK\x03\x04") and suffix in ZIP_DOCUMENTS:
        return suffix, "file"
    return None


@router.post("", response_model=Uploaded, status_code=status.HTTP_201_CREATED, responses=errors(413, 415))
async def upload(file: UploadFile = File(...), user: User = Depends(require_role(Role.ADMIN, Role.OPERATOR,
                                                                                 Role.MANAGER, Role.REP)),
                 ctx: ApiContext = Depends(api_context)) -> Uploaded:
    """A picture (PNG, JPEG, GIF, WebP) or a document (PDF, Word, Excel, PowerPoint), at most 10 MB."""
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise HTTPException(413, f"{file.filename}: larger than {MAX_BYTES // (1024 * 1024)} MB; send a smaller one")
    found = _kind(data[:16], file.filename or "")
    if not data or found is None:
        raise HTTPException(415, f"{file.filename}: not a picture (PNG, JPEG, GIF, WebP) or a document (PDF, "
                                 "Word, Excel, PowerPoint)")
    ext, kind = found
    name = secrets.token_urlsafe(18) + ext
    folder = ctx.media_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    async with ctx.sessions() as session, session.begin():
        await audit.record("media.upload", entity_type="media", entity_id=name, actor=user, db_session=session,
                           details={"filename": (file.filename or "")[:200], "size": len(data), "kind": kind})
    return Uploaded(url=f"{ctx.base_url}/media/{name}", kind=kind, name=(file.filename or name)[:200],
                    size=len(data))


@public.get("/media/{name}", include_in_schema=False)
async def media(name: str, ctx: ApiContext = Depends(api_context)) -> FileResponse:
    stem, dot, ext = name.partition(".")
    path = ctx.media_dir / name
    if not dot or len(stem) != 24 or not stem.replace("-", "").replace("_", "").isalnum() \
            or f".{ext}" not in MEDIA_TYPES or not path.is_file():
        raise HTTPException(404, "no such file")
    media_type = MEDIA_TYPES[f".{ext}"]
    inline = media_type.startswith("image/")
    return FileResponse(path, media_type=media_type, headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=86400",
        "Content-Disposition": "inline" if inline else f'attachment; filename="{name}"'})


def is_ours(url: str, base_url: str) -> bool:
    return url.startswith(f"{base_url}/media/")
