#!/usr/bin/env python3
"""Offline Aliyun OSS stand-in for artifact-gateway's test suite.

It serves the part of the OSS REST API that the OSS backend (opendal 0.59.x
`services-oss`) sends, keeps objects on disk under the state directory, streams
every body (never holds an object in memory) and checks every request's
signature with the signer shipped in Alibaba's `oss2` SDK. See README.md next to
this file for the exact request list and for how verification works.

Usage (normally through start.sh):
    oss_server.py --state-dir DIR --bucket NAME --credentials FILE
It always binds 127.0.0.1, on --port (0 = let the kernel pick a free one), and
writes DIR/oss.ready ({"port": ..., "pid": ...}) once it accepts connections.
"""

import argparse
import base64
import binascii
import calendar
import email.utils
import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, unquote_plus
from xml.sax.saxutils import escape as xml_escape

import oss2
from requests.structures import CaseInsensitiveDict  # installed with oss2

try:  # the C extension makes CRC-64 fast enough for 256 MiB+ bodies
    import crcmod._crcfunext  # noqa: F401
    from oss2.utils import Crc64
    HAVE_FAST_CRC = True
except ImportError:  # pure-Python CRC would take minutes: skip the CRC header
    Crc64 = None
    HAVE_FAST_CRC = False

LOG = logging.getLogger("oss-test-server")

CHUNK = 1024 * 1024
MIN_PART_SIZE = 100 * 1024          # OSS: every part but the last >= 100 KiB
MAX_PART_NUMBER = 10000
MAX_KEY_BYTES = 1023
MAX_SKEW_SECONDS = 15 * 60          # OSS rejects requests dated > 15 min off
MAX_XML_BODY = 8 * 1024 * 1024      # CompleteMultipartUpload / Delete bodies
DRAIN_LIMIT = 1024 * 1024 * 1024    # read and discard up to 1 GiB of a rejected body
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

# Query parameters that select an operation we do not serve. A request that
# carries one gets 501 NotImplemented (instead of being mistaken for a plain
# GetObject / PutObject), so a new opendal feature shows up as a clear error.
UNSUPPORTED_OBJECT_SUBRESOURCES = {
    "acl", "tagging", "symlink", "restore", "x-oss-process", "objectInfo",
    "select", "x-oss-async-process", "live", "comp",
}
UNSUPPORTED_BUCKET_SUBRESOURCES = {
    "acl", "bucketInfo", "location", "uploads", "cors", "lifecycle", "logging",
    "website", "referer", "policy", "tagging", "encryption", "versioning",
    "inventory", "worm", "stat", "qos", "replication", "cname",
}


# --------------------------------------------------------------------------- errors


class OssError(Exception):
    """An error answered in OSS's XML shape."""

    def __init__(self, status, code, message, extra=None, headers=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


class NotModified(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection or sent a short body."""


def no_such_key(key):
    return OssError(404, "NoSuchKey", "The specified key does not exist.", {"Key": key})


def no_such_bucket(bucket):
    return OssError(404, "NoSuchBucket", "The specified bucket does not exist.", {"BucketName": bucket})


def no_such_upload(upload_id):
    return OssError(404, "NoSuchUpload",
                    "The specified upload does not exist. The upload ID may be invalid, "
                    "or the upload may have been aborted or completed.", {"UploadId": upload_id})


def malformed_xml():
    return OssError(400, "MalformedXML",
                    "The XML you provided was not well-formed or did not validate against our published schema.")


def file_exists():
    return OssError(409, "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.")


# --------------------------------------------------------------------------- helpers


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def iso_date(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def parse_http_date(value):
    """Epoch seconds of an HTTP date, or None when unparseable."""
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0)


def request_id():
    return uuid.uuid4().hex[:24].upper()


def wire_to_text(value):
    """Header values arrive latin-1 decoded; the signer wants the UTF-8 text."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def etag_list_matches(header, etag):
    """Does an If-Match / If-None-Match list name this ETag ("*" names any)?"""
    want = etag.strip('"')
    for item in header.split(","):
        item = item.strip()
        if item == "*":
            return True
        if item.startswith("W/"):
            item = item[2:]
        if item.strip('"') == want:
            return True
    return False


def parse_query(raw_query):
    """Ordered (name, value) pairs, decoded the way OSS does ('+' is a space)."""
    pairs = []
    if not raw_query:
        return pairs
    for part in raw_query.split("&"):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
        else:
            k, v = part, ""
        pairs.append((unquote_plus(k), unquote_plus(v)))
    return pairs


class Digests:
    """MD5 + (when fast) CRC-64/ECMA of a body as it streams by."""

    def __init__(self):
        self.md5 = hashlib.md5()
        self.crc = Crc64(0) if HAVE_FAST_CRC else None
        self.size = 0

    def update(self, data):
        self.md5.update(data)
        if self.crc is not None:
            self.crc.update(data)
        self.size += len(data)

    @property
    def crc_value(self):
        return str(self.crc.crc) if self.crc is not None else None


def combine_crc(crc1, crc2, len2):
    if not HAVE_FAST_CRC or crc1 is None or crc2 is None:
        return None
    return str(Crc64(0).combine(int(crc1), int(crc2), len2))


# --------------------------------------------------------------------------- storage


class Store:
    """Buckets, objects and multipart uploads on disk.

    Layout under ROOT (= STATE_DIR/oss-data):
      buckets/<bucket>/meta/<sha256(key)>.json   object metadata (includes the key)
      buckets/<bucket>/data/<random>             object bytes
      uploads/<upload-id>/info.json, part-NNNNN(.json)
      tmp/                                       bodies while they stream in
    An in-memory index (bucket -> key -> metadata) is rebuilt from meta/ at
    start-up. One lock guards the index; bodies are never read or written
    while holding it, only renamed.
    """

    def __init__(self, root):
        self.root = root
        self.lock = threading.RLock()
        self.tmp_dir = os.path.join(root, "tmp")
        self.uploads_dir = os.path.join(root, "uploads")
        self.buckets_dir = os.path.join(root, "buckets")
        for d in (self.tmp_dir, self.uploads_dir, self.buckets_dir):
            os.makedirs(d, exist_ok=True)
        for name in os.listdir(self.tmp_dir):  # leftovers of a killed instance
            try:
                os.unlink(os.path.join(self.tmp_dir, name))
            except OSError:
                pass
        self.buckets = {}
        for bucket in sorted(os.listdir(self.buckets_dir)):
            self._load_bucket(bucket)
        self.uploads = {}
        for upload_id in os.listdir(self.uploads_dir):
            info_path = os.path.join(self.uploads_dir, upload_id, "info.json")
            try:
                with open(info_path, encoding="utf-8") as f:
                    self.uploads[upload_id] = json.load(f)
            except (OSError, ValueError):
                shutil.rmtree(os.path.join(self.uploads_dir, upload_id), ignore_errors=True)

    # -- buckets

    def _bucket_dir(self, bucket):
        return os.path.join(self.buckets_dir, bucket)

    def _load_bucket(self, bucket):
        objects = {}
        meta_dir = os.path.join(self._bucket_dir(bucket), "meta")
        os.makedirs(meta_dir, exist_ok=True)
        os.makedirs(os.path.join(self._bucket_dir(bucket), "data"), exist_ok=True)
        for name in os.listdir(meta_dir):
            try:
                with open(os.path.join(meta_dir, name), encoding="utf-8") as f:
                    meta = json.load(f)
                objects[meta["key"]] = meta
            except (OSError, ValueError, KeyError):
                LOG.warning("ignoring unreadable metadata %s/%s", bucket, name)
        self.buckets[bucket] = objects

    def create_bucket(self, bucket, exist_ok=False):
        with self.lock:
            if bucket in self.buckets:
                if exist_ok:
                    return
                raise OssError(409, "BucketAlreadyExists", "The requested bucket name is not available.",
                               {"BucketName": bucket})
            self._load_bucket(bucket)

    def delete_bucket(self, bucket):
        with self.lock:
            objects = self.bucket(bucket)
            if objects:
                raise OssError(409, "BucketNotEmpty", "The bucket you tried to delete is not empty.",
                               {"BucketName": bucket})
            if any(u["bucket"] == bucket for u in self.uploads.values()):
                raise OssError(409, "BucketNotEmpty",
                               "The bucket you tried to delete has unfinished multipart uploads.",
                               {"BucketName": bucket})
            del self.buckets[bucket]
            shutil.rmtree(self._bucket_dir(bucket), ignore_errors=True)

    def bucket(self, bucket):
        objects = self.buckets.get(bucket)
        if objects is None:
            raise no_such_bucket(bucket)
        return objects

    # -- objects

    def _meta_path(self, bucket, key):
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self._bucket_dir(bucket), "meta", digest + ".json")

    def data_path(self, bucket, meta):
        return os.path.join(self._bucket_dir(bucket), "data", meta["data"])

    def new_tmp(self):
        fd, path = tempfile.mkstemp(dir=self.tmp_dir, prefix="body-")
        return os.fdopen(fd, "wb"), path

    def get(self, bucket, key):
        with self.lock:
            meta = self.bucket(bucket).get(key)
            if meta is None:
                raise no_such_key(key)
            return dict(meta)

    def open(self, bucket, key):
        """(metadata, open binary file) of a consistent snapshot of the object."""
        with self.lock:
            meta = self.bucket(bucket).get(key)
            if meta is None:
                raise no_such_key(key)
            return dict(meta), open(self.data_path(bucket, meta), "rb")

    def commit(self, bucket, key, tmp_path, meta, forbid_overwrite=False, check=None):
        """Move a finished body into place and publish its metadata atomically."""
        with self.lock:
            objects = self.bucket(bucket)
            old = objects.get(key)
            if forbid_overwrite and old is not None:
                raise file_exists()
            if check is not None:
                check(old)
            meta = dict(meta, key=key, data=uuid.uuid4().hex)
            os.replace(tmp_path, self.data_path(bucket, meta))
            self._write_meta(bucket, key, meta)
            objects[key] = meta
            if old is not None and old["data"] != meta["data"]:
                try:
                    os.unlink(self.data_path(bucket, old))
                except OSError:
                    pass
            return dict(meta)

    def _write_meta(self, bucket, key, meta):
        path = self._meta_path(bucket, key)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, path)

    def update_meta(self, bucket, key, meta):
        with self.lock:
            self._write_meta(bucket, key, meta)
            self.bucket(bucket)[key] = dict(meta)

    def delete(self, bucket, key):
        with self.lock:
            objects = self.bucket(bucket)
            old = objects.pop(key, None)
            if old is None:
                return False
            try:
                os.unlink(self._meta_path(bucket, key))
            except OSError:
                pass
            try:
                os.unlink(self.data_path(bucket, old))
            except OSError:
                pass
            return True

    def snapshot(self, bucket, prefix):
        with self.lock:
            objects = self.bucket(bucket)
            items = [(k, dict(m)) for k, m in objects.items() if k.startswith(prefix)]
        items.sort(key=lambda kv: kv[0])
        return items

    # -- multipart uploads

    def upload_dir(self, upload_id):
        return os.path.join(self.uploads_dir, upload_id)

    def create_upload(self, bucket, key, headers):
        upload_id = uuid.uuid4().hex.upper()
        info = {"bucket": bucket, "key": key, "initiated": time.time(), "headers": headers}
        d = self.upload_dir(upload_id)
        os.makedirs(d)
        with open(os.path.join(d, "info.json"), "w", encoding="utf-8") as f:
            json.dump(info, f)
        with self.lock:
            self.uploads[upload_id] = info
        return upload_id

    def upload(self, upload_id, bucket, key):
        with self.lock:
            info = self.uploads.get(upload_id)
            if info is None or info["bucket"] != bucket or info["key"] != key:
                raise no_such_upload(upload_id)
            return info

    def put_part(self, upload_id, bucket, key, number, tmp_path, part_meta):
        with self.lock:
            self.upload(upload_id, bucket, key)
            base = os.path.join(self.upload_dir(upload_id), "part-%05d" % number)
            os.replace(tmp_path, base)
            with open(base + ".json", "w", encoding="utf-8") as f:
                json.dump(part_meta, f)

    def parts(self, upload_id):
        d = self.upload_dir(upload_id)
        parts = {}
        for name in os.listdir(d):
            m = re.fullmatch(r"part-(\d{5})\.json", name)
            if m:
                try:
                    with open(os.path.join(d, name), encoding="utf-8") as f:
                        parts[int(m.group(1))] = json.load(f)
                except (OSError, ValueError):
                    pass
        return parts

    def part_path(self, upload_id, number):
        return os.path.join(self.upload_dir(upload_id), "part-%05d" % number)

    def drop_upload(self, upload_id):
        with self.lock:
            self.uploads.pop(upload_id, None)
        shutil.rmtree(self.upload_dir(upload_id), ignore_errors=True)


# --------------------------------------------------------------------------- signatures


class _SignView:
    """The request as oss2's signers read it: method, headers, params, region."""

    def __init__(self, method, headers, params, region=None):
        self.method = method
        self.headers = headers
        self.params = params
        self.region = region
        self.product = "oss"
        self.cloudbox_id = None


class Verifier:
    """Checks OSS request signatures with oss2's own signing code.

    V1 (`Authorization: OSS ak:sig`, what opendal sends), V1 query signing
    (presigned URLs: OSSAccessKeyId/Expires/Signature), V2 (`OSS2 ...`) and V4
    (`OSS4-HMAC-SHA256 ...`) header signing are supported.
    """

    def __init__(self, credentials, max_skew=MAX_SKEW_SECONDS):
        self.credentials = dict(credentials)  # access key id -> secret
        self.max_skew = max_skew

    def _secret(self, access_key_id):
        secret = self.credentials.get(access_key_id)
        if secret is None:
            raise OssError(403, "InvalidAccessKeyId",
                           "The OSS Access Key Id you provided does not exist in our records.",
                           {"OSSAccessKeyId": access_key_id})
        return secret

    def _check_time(self, when, header_name):
        if when is None:
            raise OssError(403, "AccessDenied",
                           f"OSS authentication requires a valid {header_name} header.")
        now = time.time()
        if abs(now - when) > self.max_skew:
            raise OssError(403, "RequestTimeTooSkewed",
                           "The difference between the request time and the current time is too large.",
                           {"RequestTime": http_date(when), "ServerTime": http_date(now),
                            "MaxAllowedSkewMilliseconds": str(self.max_skew * 1000)})

    @staticmethod
    def _mismatch(access_key_id, provided, string_to_sign):
        text = string_to_sign.decode("utf-8", "replace") if isinstance(string_to_sign, bytes) else string_to_sign
        raw = text.encode("utf-8")
        return OssError(403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided. "
                        "Check your key and signing method.",
                        {"OSSAccessKeyId": access_key_id, "SignatureProvided": provided,
                         "StringToSign": text, "StringToSignBytes": " ".join("%02x" % b for b in raw)})

    def verify(self, ctx):
        """Return the access key id of a correctly signed request, else raise OssError."""
        auth = ctx.headers.get("Authorization")
        names = {k for k, _ in ctx.query}
        if auth:
            auth = auth.strip()
            if auth.startswith("OSS4-HMAC-SHA256 "):
                return self._verify_v4(ctx, auth)
            if auth.startswith("OSS2 "):
                return self._verify_v2(ctx, auth)
            if auth.startswith("OSS "):
                return self._verify_v1(ctx, auth)
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.",
                           {"Authorization": auth.split(" ", 1)[0]})
        if {"OSSAccessKeyId", "Signature", "Expires"} <= names:
            return self._verify_v1_query(ctx)
        if "x-oss-signature" in names:
            raise OssError(403, "AccessDenied",
                           "This test server verifies presigned URLs of signature V1 only.")
        raise OssError(403, "AccessDenied",
                       "You have no right to access this object because of bucket acl.")

    # -- V1 --------------------------------------------------------------

    def _v1_candidates(self, ctx, signer, view, creds):
        """Expected signatures: oss2's canonical form, plus one path-style variant.

        oss2 always canonicalises a bucket-level request as "/bucket/". opendal
        (reqsign) signs the literal request path for path-style URLs, and its
        ListObjectsV2 URL is ".../bucket?list-type=2" (no trailing slash), so
        for exactly that request shape the resource "/bucket" is also accepted.
        """
        bucket, key = ctx.sign_bucket, ctx.key
        string_to_sign = signer._ProviderAuth__get_bytes_to_sign(view, bucket, key)
        expected = signer._ProviderAuth__make_signature(view, bucket, key, creds)
        out = [(expected, string_to_sign)]
        if bucket and not key and not ctx.virtual_host and ctx.raw_path == "/" + bucket:
            canonical = ("/%s/" % bucket).encode("utf-8")
            idx = string_to_sign.rfind(b"\n" + canonical)
            if idx >= 0:
                literal = string_to_sign[:idx + 1] + canonical[:-1] + string_to_sign[idx + 1 + len(canonical):]
                digest = hmac.new(creds.get_access_key_secret().encode("utf-8"), literal, hashlib.sha1).digest()
                out.append((base64.b64encode(digest).decode("ascii"), literal))
        return out

    def _verify_v1(self, ctx, auth):
        cred = auth[len("OSS "):]
        if ":" not in cred:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.")
        access_key_id, provided = cred.rsplit(":", 1)
        access_key_id = access_key_id.strip()
        provided = provided.strip()
        secret = self._secret(access_key_id)
        date_header = "x-oss-date" if ctx.headers.get("x-oss-date") else "Date"
        self._check_time(parse_http_date(ctx.headers.get(date_header, "")), date_header)
        signer = oss2.Auth(access_key_id, secret)
        creds = signer.credentials_provider.get_credentials()
        view = _SignView(ctx.method, ctx.sign_headers(), ctx.sign_params())
        candidates = self._v1_candidates(ctx, signer, view, creds)
        for expected, _ in candidates:
            if hmac.compare_digest(expected.encode(), provided.encode()):
                return access_key_id
        raise self._mismatch(access_key_id, provided, candidates[0][1])

    def _verify_v1_query(self, ctx):
        params = dict(ctx.query)
        access_key_id = params["OSSAccessKeyId"]
        provided = params["Signature"]
        secret = self._secret(access_key_id)
        try:
            expires = int(params["Expires"])
        except ValueError:
            raise OssError(403, "AccessDenied", "Expires is not a number.")
        if expires < time.time():
            raise OssError(403, "AccessDenied", "Request has expired.",
                           {"Expires": iso_date(expires), "ServerTime": iso_date(time.time())})
        headers = ctx.sign_headers()
        headers["date"] = str(expires)  # the expiry takes the Date slot
        headers.pop("x-oss-date", None)
        sign_params = {k: v for k, v in ctx.sign_params().items()
                       if k not in ("OSSAccessKeyId", "Signature", "Expires")}
        signer = oss2.Auth(access_key_id, secret)
        creds = signer.credentials_provider.get_credentials()
        view = _SignView(ctx.method, headers, sign_params)
        candidates = self._v1_candidates(ctx, signer, view, creds)
        for expected, _ in candidates:
            if hmac.compare_digest(expected.encode(), provided.encode()):
                return access_key_id
        raise self._mismatch(access_key_id, provided, candidates[0][1])

    # -- V2 --------------------------------------------------------------

    @staticmethod
    def _auth_fields(auth, scheme, sep):
        """The `key SEP value` fields, comma separated, of an Authorization header after `scheme`,
        and the header names its AdditionalHeaders field lists."""
        fields = {}
        for item in auth[len(scheme):].split(","):
            if sep in item:
                k, v = item.split(sep, 1)
                fields[k.strip()] = v.strip()
        return fields, [h for h in fields.get("AdditionalHeaders", "").split(";") if h]

    def _verify_v2(self, ctx, auth):
        fields, additional = self._auth_fields(auth, "OSS2 ", ":")
        access_key_id = fields.get("AccessKeyId")
        provided = fields.get("Signature")
        if not access_key_id or not provided:
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.")
        secret = self._secret(access_key_id)
        self._check_time(parse_http_date(ctx.headers.get("Date", "")), "Date")
        signer = oss2.AuthV2(access_key_id, secret)
        creds = signer.credentials_provider.get_credentials()
        view = _SignView(ctx.method, ctx.sign_headers(), ctx.sign_params())
        string_to_sign = signer._ProviderAuthV2__get_bytes_to_sign(view, ctx.sign_bucket, ctx.key, additional)
        expected = signer._ProviderAuthV2__make_signature(view, ctx.sign_bucket, ctx.key, additional, creds)
        if hmac.compare_digest(expected.encode(), provided.encode()):
            return access_key_id
        raise self._mismatch(access_key_id, provided, string_to_sign)

    # -- V4 --------------------------------------------------------------

    def _verify_v4(self, ctx, auth):
        fields, additional = self._auth_fields(auth, "OSS4-HMAC-SHA256 ", "=")
        credential = fields.get("Credential", "")
        provided = fields.get("Signature")
        scope = credential.split("/")
        if len(scope) != 5 or not provided or scope[3] != "oss" or scope[4] != "aliyun_v4_request":
            raise OssError(400, "InvalidArgument", "Authorization header is invalid.",
                           {"Credential": credential})
        access_key_id, scope_date, region = scope[0], scope[1], scope[2]
        secret = self._secret(access_key_id)
        stamp = ctx.headers.get("x-oss-date", "")
        try:
            when = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            when = None
        self._check_time(when, "x-oss-date")
        if stamp[:8] != scope_date:
            raise OssError(403, "SignatureDoesNotMatch",
                           "The date in the credential scope does not match x-oss-date.",
                           {"OSSAccessKeyId": access_key_id})
        signer = oss2.AuthV4(access_key_id, secret)
        creds = signer.credentials_provider.get_credentials()
        view = _SignView(ctx.method, ctx.sign_headers(), ctx.sign_params(), region=region)
        expected = signer._ProviderAuthV4__make_signature(view, ctx.sign_bucket, ctx.key, additional, creds, stamp)
        if hmac.compare_digest(expected.encode(), provided.encode()):
            return access_key_id
        canonical = signer._ProviderAuthV4__get_canonical_request_bytes(view, ctx.sign_bucket, ctx.key, additional)
        raise self._mismatch(access_key_id, provided, canonical)


# --------------------------------------------------------------------------- request context


class RequestContext:
    def __init__(self, handler, virtual_bases):
        self.method = handler.command
        self.headers = handler.headers
        target = handler.path
        if target.startswith("http://") or target.startswith("https://"):
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        raw_path, _, raw_query = target.partition("?")
        self.raw_path = raw_path or "/"
        self.raw_query = raw_query
        self.query = parse_query(raw_query)
        self.params = dict(self.query)
        host_header = self.headers.get("Host", "")
        self.host = host_header
        hostname = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header
        hostname = hostname.lower()
        self.virtual_host = False
        self.bucket = None
        for base in virtual_bases:
            if hostname.endswith("." + base) and len(hostname) > len(base) + 1:
                self.virtual_host = True
                self.bucket = hostname[: -len(base) - 1]
                break
        if self.virtual_host:
            self.key = unquote(self.raw_path[1:]) if self.raw_path.startswith("/") else unquote(self.raw_path)
        else:
            segments = self.raw_path.lstrip("/").split("/", 1)
            self.bucket = unquote(segments[0]) or None
            self.key = unquote(segments[1]) if len(segments) > 1 else ""
        self.sign_bucket = self.bucket

    def sign_headers(self):
        headers = CaseInsensitiveDict()
        for name, value in self.headers.items():
            headers[name] = wire_to_text(value)
        return headers

    def sign_params(self):
        return dict(self.query)


# --------------------------------------------------------------------------- handler


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    timeout = 300

    # -- plumbing -------------------------------------------------------------

    def version_string(self):
        return "AliyunOSS"

    def log_message(self, fmt, *args):  # http.server's own lines (malformed requests etc.)
        LOG.info("%s %s", self.client_address[0], fmt % args)

    def log_request(self, code="-", size="-"):  # _dispatch logs one line per request itself
        pass

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_OPTIONS(self):
        self._dispatch()

    def _dispatch(self):
        self.rid = request_id()
        self.body_state = "unread"  # unread | read | failed
        self.status_sent = None
        self.auth_info = "-"
        started = time.time()
        ctx = None
        try:
            ctx = RequestContext(self, self.server.virtual_bases)
            self.ctx = ctx
            self._route(ctx)
        except OssError as e:
            self._send_error(e)
        except NotModified:
            pass
        except ClientGone as e:
            self.close_connection = True
            LOG.info("%s client went away: %s", self.rid, e)
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as e:
            self.close_connection = True
            LOG.info("%s connection lost: %s", self.rid, e)
        except Exception:  # noqa: BLE001 - answer 500 like a server would, keep serving
            LOG.exception("%s internal error", self.rid)
            if self.status_sent is None:
                self._send_error(OssError(500, "InternalError", "We encountered an internal error. Please try again."))
            else:
                self.close_connection = True
        finally:
            LOG.info("%s %s %s %s -> %s auth=%s %.3fs", self.rid, self.client_address[0], self.command,
                     self.path, self.status_sent, self.auth_info, time.time() - started)

    def _start(self, status, headers):
        self.send_response(status)
        self.status_sent = status
        self.send_header("x-oss-request-id", self.rid)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, status, headers=(), body=b"", content_type=None):
        headers = list(headers)
        if content_type:
            headers.append(("Content-Type", content_type))
        headers.append(("Content-Length", str(len(body))))
        self._finish_body()
        self._start(status, headers)
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_xml(self, status, root_xml, headers=()):
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + root_xml).encode("utf-8")
        self._send(status, headers, body, "application/xml")

    def _send_error(self, err):
        extra = "".join(f"\n  <{k}>{xml_escape(str(v))}</{k}>" for k, v in err.extra.items())
        host_id = self.headers.get("Host", "127.0.0.1") if hasattr(self, "headers") and self.headers else "127.0.0.1"
        xml = (f"<Error>\n  <Code>{err.code}</Code>\n  <Message>{xml_escape(err.message)}</Message>\n"
               f"  <RequestId>{self.rid}</RequestId>\n  <HostId>{xml_escape(host_id)}</HostId>{extra}\n</Error>\n")
        LOG.info("%s error %s %s: %s%s", self.rid, err.status, err.code, err.message,
                 (" | StringToSign=%r" % err.extra["StringToSign"]) if "StringToSign" in err.extra else "")
        headers = [("x-oss-ec", "0000-00000000")] + list(err.headers.items())
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode("utf-8")
        if self.status_sent is not None:
            self.close_connection = True
            return
        if self.command == "HEAD":
            self._finish_body()
            self._start(err.status, headers + [("Content-Length", "0")])
            return
        self._send(err.status, headers, body, "application/xml")

    # -- request bodies ---------------------------------------------------------

    def _content_length(self):
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            n = int(value)
        except ValueError:
            raise OssError(400, "InvalidArgument", "Content-Length is not a number.")
        if n < 0:
            raise OssError(400, "InvalidArgument", "Content-Length is negative.")
        return n

    def _is_chunked(self):
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _body_chunks(self):
        """Yield the request body in pieces (Content-Length or chunked)."""
        if self.body_state != "unread":
            return
        self.body_state = "failed"
        rfile = self.rfile
        if self._is_chunked():
            while True:
                line = rfile.readline(65537)
                if not line:
                    raise ClientGone("connection closed inside a chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise OssError(400, "InvalidArgument", "Malformed chunked request body.")
                if size == 0:
                    while True:  # trailers
                        line = rfile.readline(65537)
                        if not line or line in (b"\r\n", b"\n"):
                            break
                    break
                remaining = size
                while remaining:
                    data = rfile.read(min(CHUNK, remaining))
                    if not data:
                        raise ClientGone("connection closed inside a chunk")
                    remaining -= len(data)
                    yield data
                rfile.readline(3)
        else:
            remaining = self._content_length() or 0
            while remaining:
                data = rfile.read(min(CHUNK, remaining))
                if not data:
                    raise ClientGone(f"body ended {remaining} bytes early")
                remaining -= len(data)
                yield data
        self.body_state = "read"

    def _finish_body(self):
        """Before answering, make sure the connection is positioned at the next request."""
        if self.body_state == "read":
            return
        if self.body_state == "failed":
            self.close_connection = True
            return
        has_body = self._is_chunked() or (self.headers.get("Content-Length") not in (None, "0"))
        if not has_body:
            self.body_state = "read"
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if not self._is_chunked() and length > DRAIN_LIMIT:
            self.close_connection = True
            self.body_state = "failed"
            return
        try:
            for _ in self._body_chunks():
                pass
        except (OssError, ClientGone, OSError):
            self.close_connection = True

    def _read_small_body(self, limit=MAX_XML_BODY):
        length = self._content_length()
        if length is not None and length > limit:
            raise OssError(400, "InvalidArgument", "Request body is too large.")
        parts, total = [], 0
        for data in self._body_chunks():
            total += len(data)
            if total > limit:
                raise OssError(400, "InvalidArgument", "Request body is too large.")
            parts.append(data)
        return b"".join(parts)

    def _receive_to_tmp(self):
        """Stream the body to a temp file; returns (path, Digests)."""
        if not self._is_chunked() and self.headers.get("Content-Length") is None:
            raise OssError(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
        store = self.server.store
        f, path = store.new_tmp()
        digests = Digests()
        try:
            with f:
                for data in self._body_chunks():
                    digests.update(data)
                    f.write(data)
        except BaseException:
            try:
                os.unlink(path)
            except OSError:
                pass
            raise
        want_md5 = self.headers.get("Content-MD5")
        if want_md5 is not None:
            if want_md5.strip() != base64.b64encode(digests.md5.digest()).decode():
                os.unlink(path)
                raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.",
                               {"ContentMD5": want_md5})
        return path, digests

    # -- routing -------------------------------------------------------------

    def _route(self, ctx):
        self.auth_info = self.server.verifier.verify(ctx)
        store = self.server.store
        method, bucket, key, params = ctx.method, ctx.bucket, ctx.key, ctx.params

        if bucket is None:
            raise OssError(501, "NotImplemented", "Service-level requests are not served by this test server.")
        if key:
            if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
                raise OssError(400, "KeyTooLong", "The object key is too long.", {"Key": key[:64]})
            if key.startswith("/") or key.startswith("\\"):
                raise OssError(400, "InvalidObjectName", "The specified object is not valid.", {"Key": key})

        if not key:
            if method == "PUT" and not params:
                return self.put_bucket(bucket)
            store.bucket(bucket)  # NoSuchBucket first, like OSS
            for name in params:
                if name in UNSUPPORTED_BUCKET_SUBRESOURCES:
                    raise OssError(501, "NotImplemented",
                                   f"Bucket operation ?{name} is not served by this test server.")
            if method == "GET" and "versions" in params:
                return self.list_object_versions(bucket)
            if method == "GET" and params.get("list-type") == "2":
                return self.list_objects(bucket, v2=True)
            if method == "GET":
                return self.list_objects(bucket, v2=False)
            if method == "POST" and "delete" in params:
                return self.delete_multiple(bucket)
            if method == "DELETE" and not params:
                store.delete_bucket(bucket)
                return self._send(204)
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

        store.bucket(bucket)
        for name in params:
            if name in UNSUPPORTED_OBJECT_SUBRESOURCES:
                raise OssError(501, "NotImplemented", f"Object operation ?{name} is not served by this test server.")
        version = params.get("versionId")
        if version is not None and version != "null":
            raise OssError(404, "NoSuchVersion", "The specified version does not exist.", {"VersionId": version})

        if method == "PUT":
            if "partNumber" in params and "uploadId" in params:
                if self.headers.get("x-oss-copy-source"):
                    raise OssError(501, "NotImplemented", "UploadPartCopy is not served by this test server.")
                return self.upload_part(bucket, key)
            if self.headers.get("x-oss-copy-source"):
                return self.copy_object(bucket, key)
            return self.put_object(bucket, key)
        if method in ("GET", "HEAD"):
            if "uploadId" in params:
                raise OssError(501, "NotImplemented", "ListParts is not served by this test server.")
            if "objectMeta" in params:
                return self.get_object_meta(bucket, key)
            return self.get_object(bucket, key, head=(method == "HEAD"))
        if method == "DELETE":
            if "uploadId" in params:
                return self.abort_upload(bucket, key)
            store.delete(bucket, key)
            return self._send(204)
        if method == "POST":
            if "uploads" in params:
                return self.initiate_upload(bucket, key)
            if "uploadId" in params:
                return self.complete_upload(bucket, key)
            if "append" in params:
                return self.append_object(bucket, key)
        raise OssError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    # -- bucket operations -----------------------------------------------------

    def put_bucket(self, bucket):
        if not BUCKET_RE.match(bucket):
            raise OssError(400, "InvalidBucketName", "The specified bucket is not valid.", {"BucketName": bucket})
        self._read_small_body()
        self.server.store.create_bucket(bucket)
        self._send(200, [("Location", "/" + bucket)])

    def _list_entries(self, bucket, prefix, delimiter, marker, start_after):
        """Sorted listing entries ('K', key, meta) / ('P', prefix, None) after marker."""
        last_prefix = None
        for key, meta in self.server.store.snapshot(bucket, prefix):
            if start_after is not None and key <= start_after:
                continue
            entry = ("K", key, meta)
            if delimiter:
                i = key.find(delimiter, len(prefix))
                if i >= 0:
                    cp = key[: i + len(delimiter)]
                    if cp == last_prefix:
                        continue
                    last_prefix = cp
                    entry = ("P", cp, None)
            if marker is not None and entry[1] <= marker:
                continue
            yield entry

    def _max_keys(self, default=100):
        raw = self.ctx.params.get("max-keys")
        if raw is None or raw == "":
            return default
        try:
            n = int(raw)
        except ValueError:
            raise OssError(400, "InvalidArgument", "max-keys is not a number.", {"ArgumentName": "max-keys"})
        if n < 0 or n > 1000:
            raise OssError(400, "InvalidArgument", "max-keys must be between 0 and 1000.",
                           {"ArgumentName": "max-keys", "ArgumentValue": raw})
        return n

    def _encoder(self):
        enc = self.ctx.params.get("encoding-type")
        if enc not in (None, "", "url"):
            raise OssError(400, "InvalidArgument", "encoding-type must be url.", {"ArgumentName": "encoding-type"})
        if enc == "url":
            return lambda s: xml_escape(quote(s, safe="/"))
        return xml_escape

    def list_objects(self, bucket, v2):
        p = self.ctx.params
        prefix = p.get("prefix", "")
        delimiter = p.get("delimiter", "")
        max_keys = self._max_keys()
        enc = self._encoder()
        fetch_owner = p.get("fetch-owner", "false").lower() == "true" or not v2
        if v2:
            token = p.get("continuation-token")
            start_after = p.get("start-after")
            marker = None
            if token:
                try:
                    marker = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
                except (binascii.Error, ValueError):
                    raise OssError(400, "InvalidArgument", "The continuation token is not valid.",
                                   {"ArgumentName": "continuation-token"})
                start_after_filter = None
            else:
                start_after_filter = start_after or None
        else:
            marker = p.get("marker") or None
            start_after_filter = None
        self._read_small_body()

        entries, truncated = self._list_page(bucket, prefix, delimiter, marker, start_after_filter, max_keys)

        out = [f'<ListBucketResult>\n  <Name>{xml_escape(bucket)}</Name>\n  <Prefix>{enc(prefix)}</Prefix>']
        if v2:
            if p.get("start-after"):
                out.append(f"  <StartAfter>{enc(p['start-after'])}</StartAfter>")
            if p.get("continuation-token"):
                out.append(f"  <ContinuationToken>{xml_escape(p['continuation-token'])}</ContinuationToken>")
        else:
            out.append(f"  <Marker>{enc(p.get('marker', ''))}</Marker>")
        out.append(f"  <MaxKeys>{max_keys}</MaxKeys>")
        self._list_flags(out, enc, delimiter, truncated)
        if truncated and entries:
            last = entries[-1][1]
            if v2:
                token = base64.urlsafe_b64encode(last.encode("utf-8")).decode().rstrip("=")
                out.append(f"  <NextContinuationToken>{token}</NextContinuationToken>")
            else:
                out.append(f"  <NextMarker>{enc(last)}</NextMarker>")
        if v2:
            out.append(f"  <KeyCount>{len(entries)}</KeyCount>")
        for kind, name, meta in entries:
            if kind != "K":
                continue
            owner = ("\n    <Owner>\n      <ID>1000000000000000</ID>\n      <DisplayName>1000000000000000</DisplayName>"
                     "\n    </Owner>") if fetch_owner else ""
            out.append(f"  <Contents>\n    <Key>{enc(name)}</Key>\n    <LastModified>{iso_date(meta['mtime'])}</LastModified>"
                       f"\n    <ETag>{meta['etag']}</ETag>\n    <Type>{meta['type']}</Type>\n    <Size>{meta['size']}</Size>"
                       f"\n    <StorageClass>Standard</StorageClass>{owner}\n  </Contents>")
        self._send_listing(out, entries, enc, "ListBucketResult")

    def _list_page(self, bucket, prefix, delimiter, marker, start_after, max_keys):
        """The first `max_keys` entries of a listing, and whether more follow."""
        entries = []
        for entry in self._list_entries(bucket, prefix, delimiter, marker, start_after):
            if len(entries) >= max_keys:
                return entries, True
            entries.append(entry)
        return entries, False

    def _list_flags(self, out, enc, delimiter, truncated):
        """A listing's Delimiter, EncodingType and IsTruncated elements."""
        if delimiter:
            out.append(f"  <Delimiter>{enc(delimiter)}</Delimiter>")
        if self.ctx.params.get("encoding-type"):
            out.append("  <EncodingType>url</EncodingType>")
        out.append(f"  <IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")

    def _send_listing(self, out, entries, enc, root):
        """Ends a listing with its common prefixes and the closing tag `root`, and sends it."""
        for kind, name, _ in entries:
            if kind == "P":
                out.append(f"  <CommonPrefixes>\n    <Prefix>{enc(name)}</Prefix>\n  </CommonPrefixes>")
        out.append(f"</{root}>\n")
        self._send_xml(200, "\n".join(out))

    def list_object_versions(self, bucket):
        """Versioning is never enabled here: every object is its only ("null") version."""
        p = self.ctx.params
        prefix = p.get("prefix", "")
        delimiter = p.get("delimiter", "")
        max_keys = self._max_keys()
        enc = self._encoder()
        marker = p.get("key-marker") or None
        self._read_small_body()
        entries, truncated = self._list_page(bucket, prefix, delimiter, marker, None, max_keys)
        out = [f"<ListVersionsResult>\n  <Name>{xml_escape(bucket)}</Name>\n  <Prefix>{enc(prefix)}</Prefix>",
               f"  <KeyMarker>{enc(p.get('key-marker', ''))}</KeyMarker>",
               f"  <VersionIdMarker>{xml_escape(p.get('version-id-marker', ''))}</VersionIdMarker>",
               f"  <MaxKeys>{max_keys}</MaxKeys>"]
        self._list_flags(out, enc, delimiter, truncated)
        if truncated and entries:
            out.append(f"  <NextKeyMarker>{enc(entries[-1][1])}</NextKeyMarker>")
            out.append("  <NextVersionIdMarker>null</NextVersionIdMarker>")
        for kind, name, meta in entries:
            if kind == "K":
                out.append(f"  <Version>\n    <Key>{enc(name)}</Key>\n    <VersionId>null</VersionId>\n"
                           f"    <IsLatest>true</IsLatest>\n    <LastModified>{iso_date(meta['mtime'])}</LastModified>\n"
                           f"    <ETag>{meta['etag']}</ETag>\n    <Type>{meta['type']}</Type>\n    <Size>{meta['size']}</Size>\n"
                           f"    <StorageClass>Standard</StorageClass>\n  </Version>")
        self._send_listing(out, entries, enc, "ListVersionsResult")

    def delete_multiple(self, bucket):
        if self.headers.get("Content-MD5") is None:
            raise OssError(400, "InvalidDigest", "Missing required header for this request: Content-MD5.")
        body = self._read_small_body()
        if self.headers["Content-MD5"].strip() != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise malformed_xml()
        if root.tag != "Delete":
            raise malformed_xml()
        quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
        url_encoded = self.ctx.params.get("encoding-type") == "url"
        objects = root.findall("Object")
        if not objects or len(objects) > 1000:
            raise malformed_xml()
        deleted = []
        for obj in objects:
            key = obj.findtext("Key")
            if key is None or key == "":
                raise malformed_xml()
            if url_encoded:
                key = unquote(key)
            self.server.store.delete(bucket, key)
            deleted.append(key)
        enc = (lambda s: xml_escape(quote(s, safe="/"))) if url_encoded else xml_escape
        out = ["<DeleteResult>"]
        if url_encoded:
            out.append("  <EncodingType>url</EncodingType>")
        if not quiet:
            for key in deleted:
                out.append(f"  <Deleted>\n    <Key>{enc(key)}</Key>\n  </Deleted>")
        out.append("</DeleteResult>\n")
        self._send_xml(200, "\n".join(out))

    # -- object operations -------------------------------------------------------

    def _stored_headers(self):
        """Standard content headers and x-oss-meta-* of a write, as sent on the wire."""
        keep = {}
        for name in ("Content-Type", "Content-Disposition", "Content-Encoding", "Cache-Control",
                     "Content-Language", "Expires"):
            value = self.headers.get(name)
            if value is not None:
                keep[name] = value
        user = {}
        for name, value in self.headers.items():
            lower = name.lower()
            if lower.startswith("x-oss-meta-"):
                user[lower[len("x-oss-meta-"):]] = value
        return keep, user

    def _forbid_overwrite(self):
        return self.headers.get("x-oss-forbid-overwrite", "").strip().lower() == "true"

    @staticmethod
    def _object_headers(meta):
        headers = [("ETag", meta["etag"]), ("Last-Modified", http_date(meta["mtime"])),
                   ("x-oss-object-type", meta["type"]), ("x-oss-storage-class", "Standard")]
        if meta.get("crc64") is not None:
            headers.append(("x-oss-hash-crc64ecma", meta["crc64"]))
        if meta.get("md5") and meta["type"] == "Normal":
            headers.append(("Content-MD5", meta["md5"]))
        if meta["type"] == "Appendable":
            headers.append(("x-oss-next-append-position", str(meta["size"])))
        return headers

    def _check_object_size(self):
        length = self._content_length()
        if length is not None and length > 5 * 1024 ** 3:
            raise OssError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")

    def put_object(self, bucket, key):
        self._check_object_size()
        forbid = self._forbid_overwrite()
        if forbid and self._exists(bucket, key):  # answer early, as OSS does, before taking the body
            raise file_exists()
        std, user = self._stored_headers()
        path, d = self._receive_to_tmp()
        meta = {"size": d.size, "etag": '"%s"' % d.md5.hexdigest().upper(),
                "md5": base64.b64encode(d.md5.digest()).decode(), "crc64": d.crc_value,
                "mtime": time.time(), "type": "Normal", "headers": std, "user": user}
        try:
            meta = self.server.store.commit(bucket, key, path, meta, forbid_overwrite=forbid)
        except BaseException:
            if os.path.exists(path):
                os.unlink(path)
            raise
        headers = [("ETag", meta["etag"]), ("Content-MD5", meta["md5"])]
        if meta["crc64"] is not None:
            headers.append(("x-oss-hash-crc64ecma", meta["crc64"]))
        self._send(200, headers)

    def _exists(self, bucket, key):
        with self.server.store.lock:
            return key in self.server.store.bucket(bucket)

    def append_object(self, bucket, key):
        store = self.server.store
        try:
            position = int(self.ctx.params.get("position", ""))
        except ValueError:
            raise OssError(400, "InvalidArgument", "position is not a number.", {"ArgumentName": "position"})
        std, user = self._stored_headers()
        path, d = self._receive_to_tmp()
        try:
            with store.lock:
                objects = store.bucket(bucket)
                old = objects.get(key)
                if old is not None and old["type"] != "Appendable":
                    raise OssError(409, "ObjectNotAppendable", "The object is not appendable.")
                current = old["size"] if old is not None else 0
                if position != current:
                    raise OssError(409, "PositionNotEqualToLength", "Position is not equal to file length.",
                                   headers={"x-oss-next-append-position": str(current)})
                if old is None:
                    meta = {"size": d.size, "crc64": d.crc_value, "mtime": time.time(), "type": "Appendable",
                            "headers": std, "user": user, "md5": None}
                    meta["etag"] = '"%s"' % hashlib.md5(f"{meta['crc64']}-{d.size}".encode()).hexdigest().upper()
                    meta = store.commit(bucket, key, path, meta)
                    path = None
                else:
                    with open(store.data_path(bucket, old), "ab") as out, open(path, "rb") as src:
                        shutil.copyfileobj(src, out, CHUNK)
                    meta = dict(old, size=old["size"] + d.size, mtime=time.time(),
                                crc64=combine_crc(old.get("crc64"), d.crc_value, d.size))
                    meta["etag"] = '"%s"' % hashlib.md5(f"{meta['crc64']}-{meta['size']}".encode()).hexdigest().upper()
                    store.update_meta(bucket, key, meta)
        finally:
            if path is not None and os.path.exists(path):
                os.unlink(path)
        headers = [("ETag", meta["etag"]), ("x-oss-next-append-position", str(meta["size"]))]
        if meta.get("crc64") is not None:
            headers.append(("x-oss-hash-crc64ecma", meta["crc64"]))
        self._send(200, headers)

    def copy_object(self, bucket, key):
        store = self.server.store
        source = self.headers["x-oss-copy-source"].strip()
        source = unquote(source.split("?", 1)[0])
        if not source.startswith("/") or "/" not in source[1:]:
            raise OssError(400, "InvalidArgument", "Copy Source must mention the source bucket and key: /sourcebucket/sourcekey.")
        src_bucket, src_key = source[1:].split("/", 1)
        directive = self.headers.get("x-oss-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise OssError(400, "InvalidArgument", "x-oss-metadata-directive must be COPY or REPLACE.")
        self._read_small_body(0)
        src_meta, src_file = store.open(src_bucket, src_key)
        with src_file:
            cond = [("x-oss-copy-source-if-match", lambda h: etag_list_matches(h, src_meta["etag"])),
                    ("x-oss-copy-source-if-none-match", lambda h: not etag_list_matches(h, src_meta["etag"]))]
            for name, ok in cond:
                value = self.headers.get(name)
                if value is not None and not ok(value):
                    raise OssError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                                   {"Condition": name})
            if self._forbid_overwrite() and self._exists(bucket, key):
                raise file_exists()
            f, path = store.new_tmp()
            with f:
                shutil.copyfileobj(src_file, f, CHUNK)
        meta = {k: src_meta[k] for k in ("size", "etag", "md5", "crc64", "type", "headers", "user")}
        if meta["type"] == "Appendable":
            meta["type"] = "Normal"
        if directive == "REPLACE":
            meta["headers"], meta["user"] = self._stored_headers()
        meta["mtime"] = time.time()
        try:
            meta = store.commit(bucket, key, path, meta, forbid_overwrite=self._forbid_overwrite())
        finally:
            if os.path.exists(path):
                os.unlink(path)
        self._send_xml(200, f"<CopyObjectResult>\n  <ETag>{meta['etag']}</ETag>\n"
                            f"  <LastModified>{iso_date(meta['mtime'])}</LastModified>\n</CopyObjectResult>\n")

    def _preconditions(self, meta):
        """RFC 7232 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since."""
        h = self.headers
        mtime = int(meta["mtime"])
        if h.get("If-Match") is not None:
            if not etag_list_matches(h["If-Match"], meta["etag"]):
                raise OssError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                               {"Condition": "If-Match"})
        elif h.get("If-Unmodified-Since") is not None:
            t = parse_http_date(h["If-Unmodified-Since"])
            if t is not None and mtime > t:
                raise OssError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.",
                               {"Condition": "If-Unmodified-Since"})
        not_modified = False
        if h.get("If-None-Match") is not None:
            not_modified = etag_list_matches(h["If-None-Match"], meta["etag"])
        elif h.get("If-Modified-Since") is not None:
            t = parse_http_date(h["If-Modified-Since"])
            not_modified = t is not None and mtime <= t
        if not_modified:
            self._finish_body()
            self._start(304, [("ETag", meta["etag"]), ("Last-Modified", http_date(meta["mtime"]))])
            raise NotModified()

    def _range(self, size):
        """(start, end) inclusive for a satisfiable single range, None for the whole object."""
        header = self.headers.get("Range")
        if header is None:
            return None
        standard = self.headers.get("x-oss-range-behavior", "").strip().lower() == "standard"
        m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
        if not m or (m.group(1) == "" and m.group(2) == ""):
            return None  # malformed or multi-range: OSS ignores it and answers 200
        unsatisfiable = OssError(416, "InvalidRange", "The requested range cannot be satisfied",
                                 {"RangeRequested": header, "ActualObjectSize": str(size)},
                                 headers={"Content-Range": f"bytes */{size}"})
        if m.group(1) == "":
            n = int(m.group(2))
            if n == 0 or size == 0:
                if standard:
                    raise unsatisfiable
                return None
            if n > size and not standard:
                return None
            return max(size - n, 0), size - 1
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else None
        if end is not None and end < start:
            return None
        if start >= size:
            if standard:
                raise unsatisfiable
            return None
        if end is None or end >= size:
            if end is not None and not standard:
                return None  # legacy behaviour: an out-of-bounds end means "whole object"
            end = size - 1
        return start, end

    def get_object(self, bucket, key, head):
        self._read_small_body(0)
        meta, f = self.server.store.open(bucket, key)
        with f:
            self._preconditions(meta)
            size = meta["size"]
            rng = self._range(size)
            headers = self._object_headers(meta)
            stored = dict(meta.get("headers") or {})
            stored.setdefault("Content-Type", "application/octet-stream")
            for q, name in (("response-content-type", "Content-Type"),
                            ("response-content-disposition", "Content-Disposition"),
                            ("response-content-encoding", "Content-Encoding"),
                            ("response-cache-control", "Cache-Control"),
                            ("response-content-language", "Content-Language"),
                            ("response-expires", "Expires")):
                if q in self.ctx.params:
                    stored[name] = self.ctx.params[q]
            headers += list(stored.items())
            headers += [("x-oss-meta-" + k, v) for k, v in (meta.get("user") or {}).items()]
            headers.append(("Accept-Ranges", "bytes"))
            if rng is None:
                status, start, length = 200, 0, size
            else:
                status, start, length = 206, rng[0], rng[1] - rng[0] + 1
                headers.append(("Content-Range", f"bytes {rng[0]}-{rng[1]}/{size}"))
                headers = [h for h in headers if h[0] not in ("x-oss-hash-crc64ecma", "Content-MD5")]
            headers.append(("Content-Length", str(length)))
            self._start(status, headers)
            if head:
                return
            f.seek(start)
            remaining = length
            while remaining:
                data = f.read(min(CHUNK, remaining))
                if not data:
                    raise ClientGone("object file shorter than its metadata")
                self.wfile.write(data)
                remaining -= len(data)

    def get_object_meta(self, bucket, key):
        self._read_small_body(0)
        meta = self.server.store.get(bucket, key)
        self._start(200, [("ETag", meta["etag"]), ("Last-Modified", http_date(meta["mtime"])),
                          ("x-oss-last-access-time", http_date(meta["mtime"])),
                          ("Content-Length", "0") if self.command == "GET" else ("Content-Length", str(meta["size"]))]
                    + ([("x-oss-hash-crc64ecma", meta["crc64"])] if meta.get("crc64") else []))

    # -- multipart ---------------------------------------------------------------

    def initiate_upload(self, bucket, key):
        self._read_small_body()
        if self._forbid_overwrite() and self._exists(bucket, key):
            raise file_exists()
        std, user = self._stored_headers()
        upload_id = self.server.store.create_upload(bucket, key, {"headers": std, "user": user})
        enc = self._encoder()
        xml = (f"<InitiateMultipartUploadResult>\n  <Bucket>{xml_escape(bucket)}</Bucket>\n  <Key>{enc(key)}</Key>\n"
               f"  <UploadId>{upload_id}</UploadId>\n"
               + ("  <EncodingType>url</EncodingType>\n" if self.ctx.params.get("encoding-type") else "")
               + "</InitiateMultipartUploadResult>\n")
        self._send_xml(200, xml)

    def upload_part(self, bucket, key):
        p = self.ctx.params
        upload_id = p["uploadId"]
        try:
            number = int(p["partNumber"])
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PART_NUMBER:
            raise OssError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive.",
                           {"ArgumentName": "partNumber", "ArgumentValue": p["partNumber"]})
        store = self.server.store
        store.upload(upload_id, bucket, key)
        self._check_object_size()
        path, d = self._receive_to_tmp()
        etag = '"%s"' % d.md5.hexdigest().upper()
        try:
            store.put_part(upload_id, bucket, key, number, path,
                           {"etag": etag, "size": d.size, "crc64": d.crc_value, "mtime": time.time()})
        finally:
            if os.path.exists(path):
                os.unlink(path)
        headers = [("ETag", etag), ("Content-MD5", base64.b64encode(d.md5.digest()).decode())]
        if d.crc_value is not None:
            headers.append(("x-oss-hash-crc64ecma", d.crc_value))
        self._send(200, headers)

    def complete_upload(self, bucket, key):
        store = self.server.store
        upload_id = self.ctx.params["uploadId"]
        info = store.upload(upload_id, bucket, key)
        body = self._read_small_body()
        uploaded = store.parts(upload_id)
        if self.headers.get("x-oss-complete-all", "").strip().lower() == "yes":
            if body.strip():
                raise OssError(400, "InvalidArgument", "x-oss-complete-all requires an empty body.")
            chosen = [(n, uploaded[n]["etag"]) for n in sorted(uploaded)]
            if not chosen:
                raise OssError(400, "InvalidPart", "No part has been uploaded.")
        else:
            try:
                root = ElementTree.fromstring(body)
            except ElementTree.ParseError:
                raise malformed_xml()
            if root.tag != "CompleteMultipartUpload":
                raise malformed_xml()
            chosen = []
            for part in root.findall("Part"):
                try:
                    number = int((part.findtext("PartNumber") or "").strip())
                except ValueError:
                    raise malformed_xml()
                chosen.append((number, (part.findtext("ETag") or "").strip()))
            if not chosen:
                raise malformed_xml()
        invalid_part = OssError(400, "InvalidPart",
                                "One or more of the specified parts could not be found or the specified entity "
                                "tag might not have matched the part's entity tag.", {"UploadId": upload_id})
        previous = 0
        for i, (number, etag) in enumerate(chosen):
            if number <= previous:
                raise OssError(400, "InvalidPartOrder",
                               "The list of parts was not in ascending order. Parts list must specified in order by part number.",
                               {"UploadId": upload_id})
            previous = number
            part = uploaded.get(number)
            if part is None or part["etag"].strip('"').upper() != etag.strip('"').upper():
                invalid_part.extra.update(PartNumber=str(number), ETag=etag)
                raise invalid_part
            if i < len(chosen) - 1 and part["size"] < MIN_PART_SIZE:
                raise OssError(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.",
                               {"PartNumber": str(number), "MinSizeAllowed": str(MIN_PART_SIZE),
                                "ProposedSize": str(part["size"])})
        if self._forbid_overwrite() and self._exists(bucket, key):
            raise file_exists()
        f, path = store.new_tmp()
        md5s = hashlib.md5()
        crc, total = None, 0
        try:
            with f:
                for number, _ in chosen:
                    part = uploaded[number]
                    with open(store.part_path(upload_id, number), "rb") as src:
                        shutil.copyfileobj(src, f, CHUNK)
                    md5s.update(bytes.fromhex(part["etag"].strip('"')))
                    crc = part.get("crc64") if total == 0 else combine_crc(crc, part.get("crc64"), part["size"])
                    total += part["size"]
            meta = {"size": total, "etag": '"%s-%d"' % (md5s.hexdigest().upper(), len(chosen)), "md5": None,
                    "crc64": crc, "mtime": time.time(), "type": "Multipart",
                    "headers": info["headers"]["headers"], "user": info["headers"]["user"]}
            meta = store.commit(bucket, key, path, meta, forbid_overwrite=self._forbid_overwrite())
        finally:
            if os.path.exists(path):
                os.unlink(path)
        store.drop_upload(upload_id)
        enc = self._encoder()
        xml = (f"<CompleteMultipartUploadResult>\n"
               + ("  <EncodingType>url</EncodingType>\n" if self.ctx.params.get("encoding-type") else "")
               + f"  <Location>http://{xml_escape(self.ctx.host)}/{xml_escape(bucket)}/{enc(key)}</Location>\n"
               f"  <Bucket>{xml_escape(bucket)}</Bucket>\n  <Key>{enc(key)}</Key>\n  <ETag>{meta['etag']}</ETag>\n"
               "</CompleteMultipartUploadResult>\n")
        headers = [("ETag", meta["etag"])]
        if meta["crc64"] is not None:
            headers.append(("x-oss-hash-crc64ecma", meta["crc64"]))
        self._send_xml(200, xml, headers)

    def abort_upload(self, bucket, key):
        store = self.server.store
        upload_id = self.ctx.params["uploadId"]
        store.upload(upload_id, bucket, key)
        self._read_small_body(0)
        store.drop_upload(upload_id)
        self._send(204)


# --------------------------------------------------------------------------- main


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):
            LOG.info("%s: connection closed: %s", client_address[0], err)
        else:
            LOG.exception("unhandled error serving %s", client_address[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--bucket", action="append", default=[], help="bucket to create at start (repeatable)")
    ap.add_argument("--credentials", required=True,
                    help='JSON file: {"<access key id>": "<access key secret>", ...}')
    ap.add_argument("--virtual-host-base", default="127.0.0.1,localhost",
                    help="host names under which <bucket>.<name> is read as virtual-host addressing")
    ap.add_argument("--max-skew", type=int, default=MAX_SKEW_SECONDS)
    args = ap.parse_args(argv)

    state_dir = os.path.abspath(args.state_dir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    with open(args.credentials, encoding="utf-8") as f:
        credentials = json.load(f)
    if not credentials:
        ap.error("the credentials file holds no key")

    store = Store(os.path.join(state_dir, "oss-data"))
    for bucket in args.bucket:
        if not BUCKET_RE.match(bucket):
            ap.error(f"invalid bucket name {bucket!r}")
        store.create_bucket(bucket, exist_ok=True)

    server = Server(("127.0.0.1", args.port), Handler)  # loopback only, by design
    server.store = store
    server.verifier = Verifier(credentials, args.max_skew)
    server.virtual_bases = [b.strip().lower() for b in args.virtual_host_base.split(",") if b.strip()]
    port = server.server_address[1]

    def stop(signum, _frame):
        LOG.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    ready = os.path.join(state_dir, "oss.ready")
    with open(ready + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"port": port, "pid": os.getpid()}, f)
    os.replace(ready + ".tmp", ready)
    LOG.info("listening on http://127.0.0.1:%d buckets=%s crc64=%s oss2=%s", port, ",".join(args.bucket),
             "on" if HAVE_FAST_CRC else "off (crcmod C extension missing)", oss2.__version__)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        LOG.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
