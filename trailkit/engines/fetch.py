"""``trailkit fetch``: a trail's delivered files copied from S3 into a local folder, for the local engine.

Only the day folders a window needs are listed (``delivery_days``: its days and the one after), for the
accounts and regions asked or, by default, every one found under ``AWSLogs/``. The copy keeps the delivered
layout, ``DEST/AWSLogs/[o-id/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME`` (keys relative to the location above
AWSLogs), so ``--logs DEST`` answers at once. Digests are not copied. How a file lands (temporary name,
checks, rename, owner-only) is ``landing``'s; this module is the S3 side.

A file already there is skipped when it has the object's size and ETag. The ETag of a local file is known two
ways: the manifest (see ``landing``) says which object each file was copied from; failing that, a single-part
ETag of an unencrypted or SSE-S3 object is the MD5 of its bytes, so a file copied by other means (``aws s3
sync``) or a lost manifest costs a read, not a download. A multipart (``...-N``) or SSE-KMS ETag is no MD5:
such a file without its manifest line is copied again. Objects are read with ``If-Match`` their listed ETag,
so what lands is what was listed and recorded. One fetch at a time into a folder: a fetch removes the
temporary files it finds in the day folders it copies, and a second one's copies would then fail (named).
"""
from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable, NamedTuple

from ..errors import InvalidInput, TrailkitError, aws_error, require
from ..inputs import Window, output_folder, positive_int
from . import s3layout
from .landing import CHUNK, Manifest, NotLanded, clear_parts, land, md5_of
from .layout import delivery_days
from .s3layout import TrailLayout

log = logging.getLogger(__name__)

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_ETAG_NOT_MD5 = ("aws:kms", "aws:kms:dsse")  # server-side encryption under which a single-part ETag is no MD5
_REFUSED_CREDENTIALS = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                        "TokenRefreshRequired")

Progress = Callable[[int, int, int, int], None]


class RemoteFile(NamedTuple):
    key: str
    rel: str  # its path under the destination, '/'-separated, from AWSLogs/ on
    size: int
    etag: str  # without quotes


@dataclass(frozen=True)
class FetchResult:
    """What a fetch found and did; ``failures`` names every listed object that is not now in ``dest``."""

    source: str
    dest: str
    days: tuple[date, date]
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    listed: int = 0
    listed_bytes: int = 0
    downloaded: int = 0
    downloaded_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    notes: tuple[str, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()  # (key, reason)

    @property
    def empty(self) -> bool:
        """Nothing matched: no log file in the day folders of the accounts and regions asked."""
        return self.listed == 0

    @property
    def complete(self) -> bool:
        """Something matched and every file of it is now in ``dest``."""
        return not self.empty and not self.failures

    def summary(self) -> str:
        first, last = self.days
        if self.empty:
            return (f"nothing to copy: no CloudTrail files delivered {first} to {last} in {self.source}"
                    + (f" for {', '.join(self.accounts)}" if self.accounts else ""))
        failed = f"; {len(self.failures)} failed (named below): run the fetch again" if self.failures else ""
        return (f"copied {self.downloaded} files ({human_size(self.downloaded_bytes)}) from {self.source} to "
                f"{self.dest}, {self.skipped} already there ({human_size(self.skipped_bytes)}); "
                f"{len(self.accounts)} accounts, {len(self.regions)} regions, delivered {first} to {last}{failed}")


def fetch(layout: TrailLayout, window: Window, dest: str | os.PathLike, *, accounts: tuple[str, ...] = (),
          regions: tuple[str, ...] = (), workers: int = 8, progress: Progress | None = None,
          client=None) -> FetchResult:
    """Copy the files a window needs from a trail's bucket into ``dest``, keeping the delivered layout.

    Args:
        layout: the location above ``AWSLogs`` (and the organization, for an organization trail).
        window: both ends needed: the days copied are its days and the day after (delivery lags).
        dest: the local folder (made if absent); ``--logs DEST`` then reads the copy.
        accounts, regions: the folders to copy; every one found when empty. One asked for and absent is
            said in the result's notes.
        workers: objects listed and copied at once.
        progress: called as ``progress(done_files, total_files, done_bytes, total_bytes)`` as each file is
            copied or found already there (``bar_to(sys.stderr)`` draws a bar).
        client: a boto3 S3 client to use (tests, custom sessions); else one from AWS's configuration chain.

    Returns:
        A FetchResult; ``empty`` when nothing matched, ``failures`` naming each object not copied.

    Raises:
        InvalidInput: an open window, a bad account or region, a missing bucket, no credentials.
        TrailkitError: S3 refused the listing (access denied, unreachable).

    Example:
        >>> fetch(TrailLayout.parse("s3://my-trail-bucket"), Window.parse("2024-03-01", "2024-03-07"),
        ...       "evidence", progress=bar_to(sys.stderr)).summary()  # doctest: +SKIP
    """
    first, last = _days(window)
    accounts, regions = s3layout.accounts(accounts), s3layout.regions(regions)
    workers = positive_int(workers, "--workers")
    dest = _dest(dest)
    client = client or s3_client(workers)
    notes: list[str] = []
    pairs = _targets(client, layout, accounts, regions, notes)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    prefixes = [layout.day(a, r, d) for a, r in pairs for d in days]
    pool = ThreadPoolExecutor(workers, thread_name_prefix="trailkit-fetch")
    try:  # listing is latency-bound too: one request a day folder, all at once
        listed = list(pool.map(lambda p: _list_day(client, layout, p), prefixes))
        files = [f for found, _ in listed for f in found]
        failures = [bad for _, refused in listed for bad in refused]
        clear_parts({os.path.dirname(_local(dest, f)) for f in files})
        counts = _copy_all(pool, client, layout.base.bucket, files, dest, progress, failures)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    log.info("fetch %s: %d day folders, %d files, %d failed", layout.base, len(prefixes), len(files), len(failures))
    if not files:
        notes.append(f"no CloudTrail files delivered {first} to {last} in the {len(prefixes)} day folders looked at")
    return FetchResult(str(layout.base), dest, (first, last), tuple(dict.fromkeys(a for a, _ in pairs)),
                       tuple(dict.fromkeys(r for _, r in pairs)), len(files), sum(f.size for f in files), *counts,
                       notes=tuple(notes), failures=tuple(failures))


def _days(window: Window) -> tuple[date, date]:
    if window.start is None or window.end is None:
        raise InvalidInput("fetch needs a window with both ends, so only the days asked are copied: give --start "
                           "and --end (e.g. --start 2024-03-01 --end 2024-03-07)")
    return delivery_days(window)


def _dest(dest) -> str:
    existed = os.path.isdir(dest)
    folder = os.fspath(output_folder(dest, "--dest"))
    if not existed:
        os.chmod(folder, 0o700)
    return folder


def s3_client(workers: int = 8, profile: str | None = None, region: str | None = None):
    """An S3 client of the given profile and region (else AWS's configuration chain), a connection per worker."""
    boto3 = require("boto3")
    from botocore.config import Config

    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except Exception as e:  # botocore's ProfileNotFound
        raise InvalidInput(f"AWS profile {profile!r} cannot be used: {e}") from None
    # a connection per worker: botocore's pool holds 10 and makes the others wait for one
    return session.client("s3", config=Config(max_pool_connections=max(10, workers), retries={"mode": "standard"}))


def _valid(check, value: str) -> bool:
    try:
        check(value)
    except InvalidInput:
        return False
    return True


def _targets(client, layout: TrailLayout, accounts, regions, notes: list[str]) -> list[tuple[str, str]]:
    """The (account, region) folders to copy: those asked that exist, or all found; the absent said in notes."""
    bucket, logs = layout.base.bucket, layout.logs()
    found = _subfolders(client, bucket, logs)
    if not layout.org:
        notes += [f"this bucket holds an organization trail {o}: add --org {o}"
                  for o in found if o.startswith("o-") and _valid(s3layout.org, o)]
    present = [a for a in found if _valid(s3layout.accounts, a)]
    where = f"s3://{bucket}/{logs}"
    if not present:
        notes.append(f"no account folders in {where}: check the location (the one above AWSLogs/)"
                     + ("" if layout.org else " and --org for an organization trail"))
    notes += [f"account {a} has no folder in {where}" + (f" (there: {', '.join(present)})" if present else "")
              for a in accounts if a not in present and present]
    pairs = []
    for account in [a for a in accounts or present if a in present]:
        here = [r for r in _subfolders(client, bucket, f"{logs}{account}/CloudTrail/") if _valid(s3layout.regions, r)]
        missing = [r for r in regions if r not in here]
        if missing or not here:
            notes.append(f"account {account} has no logs in {', '.join(missing) or 'any region'}"
                         + (f" (it has {', '.join(here)})" if here else ""))
        pairs += [(account, r) for r in (regions or here) if r in here]
    return pairs


def _pages(client, bucket: str, prefix: str, delimiter: str = "/"):
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield from client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter=delimiter)
    except (BotoCoreError, ClientError) as e:
        raise _listing_error(e, bucket, prefix) from e


def _subfolders(client, bucket: str, prefix: str) -> list[str]:
    return [p["Prefix"][len(prefix):].rstrip("/")
            for page in _pages(client, bucket, prefix) for p in page.get("CommonPrefixes", [])]


def _list_day(client, layout: TrailLayout, prefix: str) -> tuple[list[RemoteFile], list[tuple[str, str]]]:
    """The objects directly in one day folder, and those whose names cannot be written safely (with why)."""
    base = layout.base.prefix + "/" if layout.base.prefix else ""
    files, refused = [], []
    for page in _pages(client, layout.base.bucket, prefix):
        for obj in page.get("Contents", []):
            key, name = obj["Key"], obj["Key"][len(prefix):]
            if not name:  # the folder's own marker
                continue
            if name.startswith(".") or "\x00" in name:
                refused.append((key, "its name starts with '.', which no CloudTrail file's does: not copied"))
                continue
            files.append(RemoteFile(key, key[len(base):], obj["Size"], obj["ETag"].strip('"')))
    return files, refused


def _listing_error(e: Exception, bucket: str, prefix: str) -> TrailkitError:
    """S3's refusal to list, as one line saying what to do."""
    from botocore.exceptions import NoCredentialsError

    if isinstance(e, NoCredentialsError):
        return InvalidInput("no AWS credentials found: set AWS_PROFILE, or run aws configure (or aws sso login), "
                            "then fetch again")
    error = aws_error(e)
    code, where = error.get("Code"), f"s3://{bucket}/{prefix}"
    if code == "NoSuchBucket":
        return InvalidInput(f"bucket {bucket!r} does not exist; check the name after s3:// (the bucket the trail "
                            "delivers to)")
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return TrailkitError(f"access denied listing {where}: the credentials in use need s3:ListBucket on "
                             f"{bucket}; use a profile that has it (AWS_PROFILE)")
    if code in _REFUSED_CREDENTIALS:
        return InvalidInput(f"S3 refused the AWS credentials in use ({code}); refresh them (aws sso login, or "
                            "another AWS_PROFILE) and fetch again")
    if code:
        return TrailkitError(f"S3 refused to list {where} ({code}: {_line(error.get('Message', ''))})")
    return TrailkitError(f"S3 could not be reached to list {where} ({_line(str(e))}); check the network and "
                         "AWS_ENDPOINT_URL")


def _line(text: str) -> str:
    return " ".join(str(text).split())


def _local(dest: str, f: RemoteFile) -> str:
    return os.path.join(dest, *f.rel.split("/"))


def _copy_all(pool, client, bucket, files, dest, progress, failures) -> list[int]:
    """Copy ``files`` on ``pool``: [downloaded, their bytes, skipped, their bytes]; failures appended, named."""
    manifest, stop = Manifest(dest), threading.Event()
    total, total_bytes = len(files), sum(f.size for f in files)
    counts = [0, 0, 0, 0]
    try:
        futures = {pool.submit(_ensure, client, bucket, f, _local(dest, f), manifest.entries.get(f.rel), stop): f
                   for f in files}
        for done, future in enumerate(as_completed(futures), 1):
            f = futures[future]
            how, value = future.result()  # value: the file's (modification, change) times, or why it failed
            if how == "failed":
                failures.append((f.key, value))
            else:
                if how != "kept":
                    manifest.add(f.rel, f.etag, f.size, value)
                at = 0 if how == "copied" else 2
                counts[at] += 1
                counts[at + 1] += f.size
            if progress is not None:
                progress(done, total, counts[1] + counts[3], total_bytes)
    except BaseException:  # Ctrl-C: the workers stop between chunks, and are waited for before the manifest closes
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        manifest.close()
    return counts


def _ensure(client, bucket: str, f: RemoteFile, path: str, known, stop: threading.Event):
    """Make ``path`` hold ``f``: ("kept" | "verified" | "copied", (modification, change) times), or ("failed",
    why)."""
    try:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_size == f.size:
            if known == (f.etag, f.size, st.st_mtime_ns, st.st_ctime_ns):
                return "kept", (st.st_mtime_ns, st.st_ctime_ns)
            if _MD5_ETAG.match(f.etag) and md5_of(path) == f.etag:
                return "verified", (st.st_mtime_ns, st.st_ctime_ns)
        if stop.is_set():
            return "failed", "the fetch was stopped before it"
        return "copied", _download(client, bucket, f, path, stop)
    except Exception as e:  # one object's trouble is named in the result, the others go on
        return "failed", _reason(e)


def _download(client, bucket: str, f: RemoteFile, path: str, stop: threading.Event) -> tuple[int, int]:
    """Stream the object listed as ``f`` (that version: If-Match) to ``path``; its (modification, change) times."""
    response = client.get_object(Bucket=bucket, Key=f.key, IfMatch=f'"{f.etag}"')
    md5 = _MD5_ETAG.match(f.etag) and response.get("ServerSideEncryption") not in _ETAG_NOT_MD5 \
        and not response.get("SSECustomerAlgorithm")
    try:
        return land(path, response["Body"].iter_chunks(CHUNK), f.size, f.etag if md5 else None, stop)
    finally:
        response["Body"].close()


def _reason(e: Exception) -> str:
    """Why one object was not copied, in a line saying what to do."""
    error = aws_error(e)
    code = error.get("Code")
    if isinstance(e, NotLanded):
        return f"{e}: run the fetch again"
    if code in ("PreconditionFailed", "412"):
        return "it changed in S3 after it was listed: run the fetch again"
    if code in ("NoSuchKey", "404"):
        return "it was deleted from S3 after it was listed"
    if code in ("AccessDenied", "403", "KMS.AccessDeniedException"):
        return "access denied: the credentials need s3:GetObject on it (and kms:Decrypt for an SSE-KMS trail)"
    if code:
        return f"S3 refused it ({code}: {_line(error.get('Message', ''))})"
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename} cannot be written ({e.strerror or e}): free space or fix permissions, then run again"
    return f"{type(e).__name__}: {_line(str(e))}: run the fetch again"


def human_size(n: int) -> str:
    """Bytes for people: 12.3 MB."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


def bar_to(stream=None, width: int = 30) -> Progress:
    """A ``progress`` callback drawing one line on ``stream`` (stderr by default), at most ten times a second,
    and only when it is a terminal: piped or logged output stays clean."""
    stream = stream or sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    drawn = [0.0]

    def draw(done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        now = time.monotonic()
        if not tty or (done < total and now - drawn[0] < 0.1):
            return
        drawn[0] = now
        filled = width * done // total if total else width
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} files, "
                     f"{human_size(done_bytes)} of {human_size(total_bytes)}" + ("\n" if done >= total else ""))
        stream.flush()

    return draw
