"""Where a trail delivers in S3, checked before anything is made or sent: one module for ``trailkit ddl``,
the Athena engine's scan estimate and ``trailkit fetch``.

CloudTrail writes ``s3://BUCKET[/PREFIX]/AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/*.json.gz``.
A location one level too high or too low makes a table or a copy that holds nothing, which a user reads as
"this key was never used"; so every piece is checked against the rules AWS documents (bucket names, 12-digit
accounts, organization ids, region names) and a wrong one is refused with what to write instead.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from ..errors import InvalidInput

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_ORG_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
# aws, aws-cn, aws-us-gov, iso partitions: us-east-1, cn-north-1, us-gov-west-1, us-isob-east-1, eu-central-2
_REGION_RE = re.compile(r"^[a-z]{2,4}(?:-[a-z]+){1,3}-\d{1,2}$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_BAD_KEY_CHARS = re.compile(r"[\s\x00-\x1f\x7f'\"\\`${}]")
EXAMPLE = "s3://my-trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1"


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 bucket name (AWS's naming rules), or None."""
    if not 3 <= len(bucket) <= 63:
        return "a bucket name has 3 to 63 characters"
    if not _BUCKET_RE.match(bucket):
        return "a bucket name has lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit"
    if ".." in bucket:
        return "a bucket name has no two dots in a row"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        return "a bucket name is not an IP address"
    if bucket.startswith(_BUCKET_PREFIXES) or bucket.endswith(_BUCKET_SUFFIXES):
        return "a bucket name cannot start with xn--, sthree- or amzn-s3-demo- nor end with -s3alias or --ol-s3"
    return None


@dataclass(frozen=True)
class S3Url:
    """``s3://bucket/prefix``, checked: the prefix without leading or trailing slash ('' for the bucket)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str, example: str = EXAMPLE) -> "S3Url":
        text = (text or "").strip()
        if not text.startswith("s3://"):
            raise InvalidInput(f"{text!r} is not an S3 location; write s3://BUCKET/PREFIX, e.g. {example}")
        bucket, _, prefix = text[5:].partition("/")
        problem = bucket_problem(bucket)
        if problem:
            raise InvalidInput(f"{bucket!r} is not a bucket name ({problem}); e.g. {example}")
        prefix = prefix.rstrip("/")
        if len(prefix.encode()) > 1024:
            raise InvalidInput(f"the prefix of {text[:60]!r}… is longer than any S3 key (1,024 bytes)")
        if prefix:
            if "" in prefix.split("/"):
                raise InvalidInput(f"{text!r} has an empty folder ('//'); S3 keys would not match it: write each "
                                   f"folder once, e.g. {example}")
            bad = _BAD_KEY_CHARS.search(prefix)
            if bad:
                raise InvalidInput(f"{text!r} holds {bad.group()!r}, which no CloudTrail prefix has (no spaces, "
                                   f"quotes or control characters); e.g. {example}")
        return cls(bucket, prefix)

    def join(self, *parts: str) -> str:
        """The key ``prefix/part/...`` (no leading slash; a trailing one when the last part ends with '/')."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def accounts(values, what: str = "--accounts") -> tuple[str, ...]:
    """Account ids from ``111122223333,444455556666`` or a list; each 12 digits, each once, in order."""
    items = _items(values, what)
    for a in items:
        if not _ACCOUNT_RE.match(a):
            raise InvalidInput(f"{what}: {a!r} is not an AWS account id (12 digits, e.g. 111122223333)")
    return items


def regions(values, what: str = "--regions") -> tuple[str, ...]:
    """Region names from ``us-east-1,eu-west-1`` or a list, each checked."""
    items = _items(values, what)
    for r in items:
        if not _REGION_RE.match(r):
            raise InvalidInput(f"{what}: {r!r} is not an AWS region name (e.g. us-east-1, eu-west-3)")
    return items


def org(value: str | None) -> str | None:
    """An organization id (``o-`` and 10 to 32 lowercase letters or digits), or None."""
    if value in (None, ""):
        return None
    if not _ORG_RE.match(value):
        raise InvalidInput(f"--org: {value!r} is not an organization id (o- and 10 to 32 lowercase letters or "
                           "digits, e.g. o-a1b2c3d4e5)")
    return value


def _items(values, what: str = "the list") -> tuple[str, ...]:
    """Comma-separated text or a list, stripped, each once; None, '' or an empty list mean none given."""
    raw = [] if values is None else values.split(",") if isinstance(values, str) and values else \
        [] if isinstance(values, str) else list(values)
    out = list(dict.fromkeys(str(v).strip() for v in raw if str(v).strip()))
    if raw and not out:
        raise InvalidInput(f"{what} holds no value; give comma-separated values, or leave it out for all")
    return tuple(out)


def known_regions() -> tuple[str, ...]:
    """Every region of the commercial partition where CloudTrail runs, from botocore's bundled endpoint data
    (no network): the default when a trail's regions are not given."""
    import boto3

    return tuple(sorted(boto3.session.Session().get_available_regions("cloudtrail")))


@dataclass(frozen=True)
class TrailLayout:
    """A trail's delivery root: ``base`` is the location *above* ``AWSLogs``; ``org`` for organization trails."""

    base: S3Url
    org: str | None = None

    @classmethod
    def parse(cls, location: str, org_id: str | None = None) -> "TrailLayout":
        url = S3Url.parse(location, "s3://my-trail-bucket or s3://my-trail-bucket/my-prefix")
        parts = url.prefix.split("/") if url.prefix else []
        if "AWSLogs" in parts:
            above = "/".join(parts[: parts.index("AWSLogs")])
            shown = f"s3://{url.bucket}/{above}".rstrip("/")
            raise InvalidInput(f"{location!r} goes down into AWSLogs; give the location above it ({shown}) with "
                               "--accounts/--regions (and --org for an organization trail)")
        if "CloudTrail-Digest" in parts:
            raise InvalidInput(f"{location!r} is a digest folder (CloudTrail-Digest holds no events); give the "
                               "bucket and the prefix under which CloudTrail writes AWSLogs/")
        return cls(url, org(org_id))

    def logs(self) -> str:
        """The key prefix of ``AWSLogs/[org/]`` (ending in '/')."""
        # join() drops empty parts, so the closing slash is added here, not by a trailing ""
        return self.base.join("AWSLogs", *([self.org] if self.org else [])) + "/"

    def region(self, account: str, region: str) -> str:
        """The key prefix of one account's region folder (ending in '/')."""
        return self.base.join("AWSLogs", *([self.org] if self.org else []), account, "CloudTrail", region) + "/"

    def day(self, account: str, region: str, day: date) -> str:
        return self.region(account, region) + day.strftime("%Y/%m/%d/")

    def template(self, account: str = "${account}", region: str = "${region}", day: str = "${date}") -> str:
        """The ``s3://`` location of one day folder with the given (or ``${...}`` projected) parts."""
        return f"s3://{self.base.bucket}/" + self.base.join(
            "AWSLogs", *([self.org] if self.org else []), account, "CloudTrail", region, day)


_DELIVERED_RE = re.compile(r"^(?:(?P<base>.*)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]{10,32})/)?(?P<account>\d{12})"
                           r"/CloudTrail/(?P<region>[a-z0-9-]+)$")


def one_region(location: str) -> tuple[TrailLayout, str, str]:
    """``s3://bucket[/prefix]/AWSLogs/[o-id/]ACCOUNT/CloudTrail/REGION`` as (layout, account, region), or
    InvalidInput saying which level is missing or extra."""
    url = S3Url.parse(location)
    m = _DELIVERED_RE.match(url.prefix)
    if m is None or not _REGION_RE.match(m["region"]):
        parts = url.prefix.split("/") if url.prefix else []
        if "AWSLogs" not in parts:
            hint = "it has no AWSLogs level: give s3://BUCKET[/PREFIX] with --accounts and --regions, or the region folder"
        elif parts[-1] == "CloudTrail" or parts[-1] == "AWSLogs" or _ACCOUNT_RE.match(parts[-1]) or _ORG_RE.match(parts[-1]):
            hint = "it stops above the region folder: add /CloudTrail/REGION, or use --accounts/--regions for many"
        elif re.fullmatch(r"\d{1,4}", parts[-1]):
            hint = "it goes into the date folders: stop at the region (…/CloudTrail/us-east-1)"
        else:
            hint = "it does not follow AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION"
        raise InvalidInput(f"{location!r} is not a trail's region folder ({hint}); e.g. {EXAMPLE}")
    base = S3Url(url.bucket, m["base"] or "")
    return TrailLayout(base, m["org"]), m["account"], m["region"]


def unpartitioned(location: str) -> S3Url:
    """A location for a table without partitions: any level at or above a region folder, never the digests
    (they hold no events) nor a date folder (a table over one day would answer for every other day with nothing)."""
    url = S3Url.parse(location)
    parts = url.prefix.split("/") if url.prefix else []
    if "CloudTrail-Digest" in parts:
        raise InvalidInput(f"{location!r} is a digest folder (CloudTrail-Digest holds no events); point at "
                           "CloudTrail/ or above")
    trail = [i for i, p in enumerate(parts) if p == "CloudTrail" and i and _ACCOUNT_RE.match(parts[i - 1])]
    if trail and len(parts) > trail[-1] + 2:
        raise InvalidInput(f"{location!r} goes into the date folders; stop at the region (…/CloudTrail/us-east-1) or above")
    return url
