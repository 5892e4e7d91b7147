#!/usr/bin/env python3
"""Self-test of the OSS test server.

Starts a private instance with start.sh (or uses a running one: --env STATE_DIR/oss.env)
and checks it three ways:

  1. Alibaba's official `oss2` SDK (signature V1, V2 and V4): put with metadata, get,
     ranges, head, conditional get (304/412), listing with delimiter and pages,
     multipart upload, copy, append, batch delete, presigned URLs, error shapes;
     and clients with a wrong secret / unknown key / no signature / a skewed
     clock / a tampered header, which must all be refused.
  2. "opendal-shaped" requests: the exact URLs, headers and bodies that opendal
     0.59.x's OSS service sends (path-style `http://127.0.0.1:PORT/<bucket>/...`),
     signed by a small V1 signer written here after reqsign-aliyun-oss 3.2.0's rules
     (not oss2's), so the server is checked against the client the product uses.
  3. A large body (--big-mib, default 64) goes through PutObject and multipart,
     and the server's resident memory must stay far below the body size.

Exit status 0 when everything passed.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote, urlsplit

import oss2
import requests

HERE = os.path.dirname(os.path.abspath(__file__))


# --------------------------------------------------------------------------- harness

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Env:
    endpoint = ""
    host = ""
    port = 0
    ak = ""
    sk = ""
    bucket_name = ""
    pid = None
    big_mib = 64

    def bucket(self, auth=None, **kw):
        return oss2.Bucket(auth or oss2.Auth(self.ak, self.sk), self.endpoint, self.bucket_name, **kw)


E = Env()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_error(fn, status, code=None):
    try:
        fn()
    except oss2.exceptions.OssError as e:
        check(e.status == status, f"expected HTTP {status} {code}, got {e.status} {e.code}: {e.message}")
        if code is not None:
            check(e.code == code, f"expected code {code}, got {e.code} ({e.message})")
        return e
    raise AssertionError(f"expected HTTP {status} {code}, but the call succeeded")


def error_fields(body):
    root = ET.fromstring(body)
    check(root.tag == "Error", f"error body root is {root.tag}")
    fields = {child.tag: (child.text or "") for child in root}
    for name in ("Code", "Message", "RequestId", "HostId"):
        check(name in fields and fields[name], f"error XML lacks <{name}>: {body!r}")
    return fields


# --------------------------------------------------------------------------- oss2 SDK, signature V1


@test
def put_get_head_with_metadata():
    b = E.bucket()
    data = b"hello oss test server\n" * 100
    r = b.put_object("sdk/meta.txt", data, headers={
        "Content-Type": "text/plain", "x-oss-meta-owner": "ci", "x-oss-meta-Build-Id": "42",
        "Cache-Control": "no-cache", "Content-Disposition": 'attachment; filename="m.txt"'})
    check(r.status == 200, f"put status {r.status}")
    check(r.etag == hashlib.md5(data).hexdigest().upper(), f"etag {r.etag}")
    check(r.crc is not None, "x-oss-hash-crc64ecma missing")
    h = b.head_object("sdk/meta.txt")
    check(h.content_length == len(data), f"head length {h.content_length}")
    check(h.etag == r.etag, "head etag")
    check(h.headers.get("x-oss-meta-owner") == "ci", f"meta owner {h.headers}")
    check(h.headers.get("x-oss-meta-build-id") == "42", f"meta build-id {h.headers}")
    check(h.headers.get("Content-Type") == "text/plain", "content-type")
    check(h.headers.get("Cache-Control") == "no-cache", "cache-control")
    check(h.headers.get("Content-Disposition") == 'attachment; filename="m.txt"', "content-disposition")
    check(h.headers.get("x-oss-object-type") == "Normal", "object type")
    check(h.headers.get("Last-Modified"), "last-modified")
    g = b.get_object("sdk/meta.txt")
    check(g.read() == data, "get body")  # oss2 also verifies x-oss-hash-crc64ecma here
    m = b.get_object_meta("sdk/meta.txt")
    check(m.etag == r.etag and m.content_length == len(data), "object meta")


@test
def ranges():
    b = E.bucket()
    data = bytes(range(256)) * 4
    b.put_object("sdk/range.bin", data)
    g = b.get_object("sdk/range.bin", byte_range=(2, 5))
    check(g.status == 206 and g.read() == data[2:6], "range 2-5")
    check(g.headers["Content-Range"] == f"bytes 2-5/{len(data)}", g.headers.get("Content-Range"))
    g = b.get_object("sdk/range.bin", byte_range=(None, 4))
    check(g.status == 206 and g.read() == data[-4:], "suffix range")
    g = b.get_object("sdk/range.bin", byte_range=(1000, None))
    check(g.status == 206 and g.read() == data[1000:], "open range")
    std = {"x-oss-range-behavior": "standard"}
    g = b.get_object("sdk/range.bin", byte_range=(1000, 5000), headers=std)
    check(g.status == 206 and g.read() == data[1000:], "standard: end clamped")
    e = expect_error(lambda: b.get_object("sdk/range.bin", byte_range=(5000, 6000), headers=std), 416, "InvalidRange")
    check(e.headers.get("Content-Range") == f"bytes */{len(data)}", "416 content-range")
    g = b.get_object("sdk/range.bin", byte_range=(5000, 6000))
    check(g.status == 200 and g.read() == data, "legacy: invalid range ignored")


@test
def conditional_get():
    b = E.bucket()
    r = b.put_object("sdk/cond.txt", b"conditional")
    etag = '"%s"' % r.etag
    expect_error(lambda: b.get_object("sdk/cond.txt", headers={"If-None-Match": etag}), 304)
    e = expect_error(lambda: b.get_object("sdk/cond.txt", headers={"If-Match": '"0000"'}), 412, "PreconditionFailed")
    check(e.details.get("Condition") == "If-Match", e.details)
    check(b.get_object("sdk/cond.txt", headers={"If-Match": etag}).read() == b"conditional", "if-match ok")
    future = email.utils.formatdate(time.time() + 3600, usegmt=True)
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    expect_error(lambda: b.get_object("sdk/cond.txt", headers={"If-Modified-Since": future}), 304)
    check(b.get_object("sdk/cond.txt", headers={"If-Modified-Since": past}).status == 200, "ims past")
    expect_error(lambda: b.get_object("sdk/cond.txt", headers={"If-Unmodified-Since": past}), 412, "PreconditionFailed")
    check(b.get_object("sdk/cond.txt", headers={"If-Unmodified-Since": future}).status == 200, "ius future")
    expect_error(lambda: b.head_object("sdk/cond.txt", headers={"If-None-Match": etag}), 304)
    expect_error(lambda: b.head_object("sdk/cond.txt", headers={"If-Match": '"0000"'}), 412)


@test
def missing_objects_and_buckets():
    b = E.bucket()
    e = expect_error(lambda: b.get_object("sdk/absent"), 404, "NoSuchKey")
    check(e.details.get("Key") == "sdk/absent", e.details)
    expect_error(lambda: b.head_object("sdk/absent"), 404)
    r = b.delete_object("sdk/absent")
    check(r.status == 204, f"delete of absent key: {r.status}")
    other = oss2.Bucket(oss2.Auth(E.ak, E.sk), E.endpoint, "no-such-bucket-x")
    expect_error(lambda: other.get_object("k"), 404, "NoSuchBucket")
    expect_error(lambda: other.put_object("k", b"x"), 404, "NoSuchBucket")


@test
def forbid_overwrite_and_delete():
    b = E.bucket()
    no_over = {"x-oss-forbid-overwrite": "true"}
    b.delete_object("sdk/once.txt")
    check(b.put_object("sdk/once.txt", b"first", headers=no_over).status == 200, "create-only put")
    expect_error(lambda: b.put_object("sdk/once.txt", b"second", headers=no_over), 409, "FileAlreadyExists")
    check(b.get_object("sdk/once.txt").read() == b"first", "not overwritten")
    b.put_object("sdk/once.txt", b"third")
    check(b.get_object("sdk/once.txt").read() == b"third", "plain put overwrites")
    check(b.delete_object("sdk/once.txt").status == 204, "delete")
    check(not b.object_exists("sdk/once.txt"), "deleted")
    check(b.put_object("sdk/empty", b"").status == 200, "empty put")
    check(b.get_object("sdk/empty").read() == b"", "empty get")
    check(b.head_object("sdk/empty").content_length == 0, "empty head")


LIST_KEYS = ["list/a.txt", "list/b/1", "list/b/2", "list/b/x/deep", "list/c/1", "list/d.txt",
             "list/e.txt", "list/sp ace+plus%&<>.txt", "list/\u00fcn\u00ef\u00e7\u00f8d\u00e9.txt", "list0"]


@test
def list_v2_with_delimiter_and_pages():
    b = E.bucket()
    for k in LIST_KEYS:
        b.put_object(k, k.encode())
    keys, prefixes, token, pages = [], [], "", 0
    while True:
        r = b.list_objects_v2(prefix="list/", delimiter="/", max_keys=2, continuation_token=token)
        pages += 1
        check(len(r.object_list) + len(r.prefix_list) <= 2, "page too big")
        keys += [o.key for o in r.object_list]
        prefixes += r.prefix_list
        if not r.is_truncated:
            break
        token = r.next_continuation_token
    want_keys = sorted(k for k in LIST_KEYS if k.startswith("list/") and "/" not in k[5:])
    check(keys == want_keys, f"keys {keys} != {want_keys}")
    check(prefixes == ["list/b/", "list/c/"], f"prefixes {prefixes}")
    check(pages >= 4, f"pages {pages}")
    allk = [o.key for o in oss2.ObjectIteratorV2(b, prefix="list", max_keys=3)]
    check(allk == sorted(LIST_KEYS), f"recursive v2 {allk}")
    allv1 = [o.key for o in oss2.ObjectIterator(b, prefix="list", max_keys=3)]
    check(allv1 == sorted(LIST_KEYS), f"recursive v1 {allv1}")
    r = b.list_objects_v2(prefix="list/", start_after="list/c/1")
    check([o.key for o in r.object_list] == [k for k in sorted(LIST_KEYS) if "list/c/1" < k and k.startswith("list/")],
          f"start-after {[o.key for o in r.object_list]}")
    r = b.list_objects_v2(prefix="list/b/", delimiter="/")
    check([o.key for o in r.object_list] == ["list/b/1", "list/b/2"] and r.prefix_list == ["list/b/x/"], "nested")
    o = b.list_objects_v2(prefix="list/a.txt").object_list[0]
    check(o.size == len(b"list/a.txt") and o.etag == hashlib.md5(b"list/a.txt").hexdigest().upper(), "entry fields")
    check(o.type == "Normal" and o.storage_class == "Standard" and o.last_modified > 0, "entry fields 2")
    expect_error(lambda: b.list_objects_v2(max_keys=1001), 400, "InvalidArgument")


@test
def multipart_upload():
    b = E.bucket()
    key = "sdk/multi.bin"
    parts_data = [os.urandom(256 * 1024), os.urandom(200 * 1024), os.urandom(1234)]
    init = b.init_multipart_upload(key, headers={"Content-Type": "application/x-test", "x-oss-meta-kind": "multi"})
    parts = []
    for i, d in enumerate(parts_data, start=1):
        r = b.upload_part(key, init.upload_id, i, d)
        check(r.etag == hashlib.md5(d).hexdigest().upper(), "part etag")
        parts.append(oss2.models.PartInfo(i, r.etag, size=len(d), part_crc=r.crc))
    r = b.complete_multipart_upload(key, init.upload_id, parts)  # oss2 checks the combined CRC
    check(r.status == 200 and r.etag.endswith("-3"), f"complete etag {r.etag}")
    whole = b"".join(parts_data)
    check(b.get_object(key).read() == whole, "multipart content")
    h = b.head_object(key)
    check(h.content_length == len(whole) and h.headers["x-oss-object-type"] == "Multipart", "multipart head")
    check(h.headers.get("Content-Type") == "application/x-test" and h.headers.get("x-oss-meta-kind") == "multi",
          "metadata of initiate kept")
    check(b.get_object(key, byte_range=(len(whole) - 10, None)).read() == whole[-10:], "range on multipart")
    expect_error(lambda: b.upload_part(key, init.upload_id, 1, b"x"), 404, "NoSuchUpload")

    up = b.init_multipart_upload("sdk/aborted.bin")
    b.upload_part("sdk/aborted.bin", up.upload_id, 1, b"abc")
    check(b.abort_multipart_upload("sdk/aborted.bin", up.upload_id).status == 204, "abort")
    expect_error(lambda: b.upload_part("sdk/aborted.bin", up.upload_id, 1, b"abc"), 404, "NoSuchUpload")
    expect_error(lambda: b.abort_multipart_upload("sdk/aborted.bin", up.upload_id), 404, "NoSuchUpload")
    check(not b.object_exists("sdk/aborted.bin"), "aborted upload left no object")

    up = b.init_multipart_upload("sdk/bad.bin")
    p1 = b.upload_part("sdk/bad.bin", up.upload_id, 1, b"small-1")
    p2 = b.upload_part("sdk/bad.bin", up.upload_id, 2, b"small-2")
    expect_error(lambda: b.complete_multipart_upload("sdk/bad.bin", up.upload_id,
                                                     [oss2.models.PartInfo(1, "0" * 32)]), 400, "InvalidPart")
    expect_error(lambda: b.complete_multipart_upload("sdk/bad.bin", up.upload_id,
                                                     [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)]),
                 400, "EntityTooSmall")
    b.abort_multipart_upload("sdk/bad.bin", up.upload_id)

    b.put_object("sdk/exists.bin", b"x")
    no_over = {"x-oss-forbid-overwrite": "true"}
    expect_error(lambda: b.init_multipart_upload("sdk/exists.bin", headers=no_over), 409, "FileAlreadyExists")


@test
def copy_append_batch_delete():
    b = E.bucket()
    b.put_object("sdk/src.txt", b"copy me", headers={"x-oss-meta-a": "1", "Content-Type": "text/x-src"})
    r = b.copy_object(E.bucket_name, "sdk/src.txt", "sdk/dst.txt")
    check(r.status == 200, "copy")
    h = b.head_object("sdk/dst.txt")
    check(h.headers.get("x-oss-meta-a") == "1" and h.headers.get("Content-Type") == "text/x-src", "copied metadata")
    check(b.get_object("sdk/dst.txt").read() == b"copy me", "copied data")
    expect_error(lambda: b.copy_object(E.bucket_name, "sdk/nope", "sdk/dst2.txt"), 404, "NoSuchKey")

    b.delete_object("sdk/append.log")
    r = b.append_object("sdk/append.log", 0, b"one,")
    check(r.next_position == 4, "append 1")
    r = b.append_object("sdk/append.log", r.next_position, b"two")
    check(r.next_position == 7, "append 2")
    e = expect_error(lambda: b.append_object("sdk/append.log", 3, b"x"), 409, "PositionNotEqualToLength")
    check(e.headers.get("x-oss-next-append-position") == "7", "next position header")
    check(b.get_object("sdk/append.log").read() == b"one,two", "appended content")
    expect_error(lambda: b.append_object("sdk/src.txt", 7, b"x"), 409, "ObjectNotAppendable")

    keys = ["sdk/del/1", "sdk/del/2", "sdk/del/&<weird>"]
    for k in keys:
        b.put_object(k, b"d")
    r = b.batch_delete_objects(keys + ["sdk/del/never-existed"])
    check(sorted(r.deleted_keys) == sorted(keys + ["sdk/del/never-existed"]), f"batch delete {r.deleted_keys}")
    check(not any(b.object_exists(k) for k in keys), "batch deleted")


@test
def presigned_urls():
    b = E.bucket()
    b.put_object("sdk/presigned.txt", b"signed url body")
    url = b.sign_url("GET", "sdk/presigned.txt", 60)
    r = requests.get(url)
    check(r.status_code == 200 and r.content == b"signed url body", f"presigned get {r.status_code}")
    bad = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    r = requests.get(bad)
    check(r.status_code == 403 and error_fields(r.content)["Code"] == "SignatureDoesNotMatch", "tampered presign")
    url = b.sign_url("GET", "sdk/presigned.txt", -10)
    r = requests.get(url)
    check(r.status_code == 403 and error_fields(r.content)["Code"] == "AccessDenied", "expired presign")
    url = b.sign_url("PUT", "sdk/presigned-put.txt", 60)
    r = requests.put(url, data=b"uploaded via url")
    check(r.status_code == 200, f"presigned put {r.status_code} {r.content[:200]}")
    check(b.get_object("sdk/presigned-put.txt").read() == b"uploaded via url", "presigned put content")


# --------------------------------------------------------------------------- rejections


@test
def wrong_secret_is_rejected():
    bad = E.bucket(oss2.Auth(E.ak, E.sk + "x"))
    e = expect_error(lambda: bad.put_object("sdk/nope.txt", b"x"), 403, "SignatureDoesNotMatch")
    check(e.details.get("StringToSign"), "StringToSign is reported")
    check(e.request_id and e.details.get("HostId"), "RequestId/HostId")
    expect_error(lambda: bad.get_object("sdk/meta.txt"), 403, "SignatureDoesNotMatch")
    expect_error(lambda: bad.list_objects_v2(prefix="list/"), 403, "SignatureDoesNotMatch")
    expect_error(lambda: bad.init_multipart_upload("sdk/nope.bin"), 403, "SignatureDoesNotMatch")
    expect_error(lambda: bad.delete_object("sdk/meta.txt"), 403, "SignatureDoesNotMatch")
    check(E.bucket().object_exists("sdk/meta.txt") and not E.bucket().object_exists("sdk/nope.txt"),
          "rejected requests changed nothing")


@test
def unknown_key_anonymous_and_skew_are_rejected():
    e = expect_error(lambda: E.bucket(oss2.Auth("LTAI5tUnknownKey000000", E.sk)).get_object("sdk/meta.txt"),
                     403, "InvalidAccessKeyId")
    check(e.details.get("OSSAccessKeyId") == "LTAI5tUnknownKey000000", e.details)
    expect_error(lambda: E.bucket(oss2.AnonymousAuth()).get_object("sdk/meta.txt"), 403, "AccessDenied")
    expect_error(lambda: E.bucket(oss2.AnonymousAuth()).put_object("sdk/anon.txt", b"x" * 100000), 403, "AccessDenied")
    original = oss2.auth.utils.http_date
    oss2.auth.utils.http_date = lambda t=None: original(time.time() - 3600)
    try:
        expect_error(lambda: E.bucket().get_object("sdk/meta.txt"), 403, "RequestTimeTooSkewed")
    finally:
        oss2.auth.utils.http_date = original
    r = requests.get(E.endpoint + "/" + E.bucket_name + "/sdk/meta.txt", headers={"Authorization": "Bearer x"})
    check(r.status_code == 400 and error_fields(r.content)["Code"] == "InvalidArgument", "unknown auth scheme")


@test
def tampered_request_is_rejected():
    """Sign with oss2, then change a signed header before sending: must fail."""
    auth = oss2.Auth(E.ak, E.sk)
    url = f"{E.endpoint}/{E.bucket_name}/sdk/tamper.txt"
    req = oss2.http.Request("PUT", url, data=b"x", headers={"x-oss-meta-v": "1", "Content-Type": "text/plain"})
    auth._sign_request(req, E.bucket_name, "sdk/tamper.txt")
    headers = {k: v for k, v in req.headers.items() if v is not None}
    r = requests.put(url, data=b"x", headers=headers)
    check(r.status_code == 200, f"untampered copy accepted ({r.status_code})")
    for change in ({"x-oss-meta-v": "2"}, {"Content-Type": "text/html"}, {"x-oss-forbid-overwrite": "false"}):
        r = requests.put(url, data=b"x", headers=dict(headers, **change))
        check(r.status_code == 403 and error_fields(r.content)["Code"] == "SignatureDoesNotMatch",
              f"tampered {change}: {r.status_code}")
    r = requests.put(url + "?acl", data=b"x", headers=headers)  # sub-resource added
    check(r.status_code == 403, f"tampered resource: {r.status_code}")
    r = requests.put(f"{E.endpoint}/{E.bucket_name}/sdk/tamper2.txt", data=b"x", headers=headers)
    check(r.status_code == 403, f"signature replayed on another key: {r.status_code}")


# --------------------------------------------------------------------------- oss2 SDK, signature V2 and V4


@test
def signature_v2_and_v4_clients():
    v2 = E.bucket(oss2.AuthV2(E.ak, E.sk))
    v2.put_object("sdk/v2.txt", b"v2 body", headers={"x-oss-meta-sig": "v2"})
    check(v2.get_object("sdk/v2.txt", byte_range=(0, 1)).read() == b"v2", "v2 range get")
    check([o.key for o in v2.list_objects_v2(prefix="sdk/v2").object_list] == ["sdk/v2.txt"], "v2 list")
    expect_error(lambda: E.bucket(oss2.AuthV2(E.ak, "bad")).get_object("sdk/v2.txt"), 403, "SignatureDoesNotMatch")

    v4 = E.bucket(oss2.AuthV4(E.ak, E.sk), region="cn-hangzhou")
    v4.put_object("sdk/v4 key+.txt", b"v4 body", headers={"x-oss-meta-sig": "v4", "Content-Type": "text/plain"})
    check(v4.get_object("sdk/v4 key+.txt").read() == b"v4 body", "v4 get")
    check(v4.head_object("sdk/v4 key+.txt").headers["x-oss-meta-sig"] == "v4", "v4 head")
    got = sorted(o.key for o in oss2.ObjectIteratorV2(v4, prefix="list/", delimiter="/", max_keys=2))
    want = sorted([k for k in LIST_KEYS if k.startswith("list/") and "/" not in k[5:]] + ["list/b/", "list/c/"])
    check(got == want, f"v4 paged list {got}")
    up = v4.init_multipart_upload("sdk/v4-multi.bin")
    p = v4.upload_part("sdk/v4-multi.bin", up.upload_id, 1, b"v4 part")
    v4.complete_multipart_upload("sdk/v4-multi.bin", up.upload_id, [oss2.models.PartInfo(1, p.etag, size=7, part_crc=p.crc)])
    check(v4.get_object("sdk/v4-multi.bin").read() == b"v4 part", "v4 multipart")
    v4.batch_delete_objects(["sdk/v4-multi.bin"])
    expect_error(lambda: E.bucket(oss2.AuthV4(E.ak, "bad"), region="cn-hangzhou").get_object("sdk/v2.txt"),
                 403, "SignatureDoesNotMatch")


# --------------------------------------------------------------------------- opendal-shaped requests

# reqsign-aliyun-oss 3.2.0 V1 sub-resource list (the part a storage client can send).
REQSIGN_SUBRESOURCES = {
    "acl", "uploads", "location", "cors", "logging", "website", "referer", "lifecycle", "delete", "append",
    "tagging", "objectMeta", "uploadId", "partNumber", "security-token", "position", "img", "style",
    "styleName", "replication", "replicationProgress", "replicationLocation", "cname", "bucketInfo", "comp",
    "qos", "live", "status", "vod", "startTime", "endTime", "symlink", "x-oss-process", "response-content-type",
    "x-oss-traffic-limit", "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "udf", "udfName", "udfImage", "udfId",
    "udfImageDesc", "udfApplication", "udfApplicationLog", "restore", "callback", "callback-var", "qosInfo",
    "policy", "stat", "encryption", "versions", "versioning", "versionId", "requestPayment",
    "x-oss-request-payer", "sequential", "inventory", "inventoryId", "continuation-token", "asyncFetch", "worm",
    "wormId", "wormExtend", "withHashContext", "x-oss-enable-md5", "x-oss-enable-sha1", "x-oss-enable-sha256",
    "x-oss-hash-ctx", "x-oss-md5-ctx", "transferAcceleration", "regionList", "cloudboxes",
    "x-oss-ac-source-ip", "x-oss-ac-subnet-mask", "x-oss-ac-vpc-id", "x-oss-ac-forward-allow", "metaQuery",
}


def opendal_path(key):
    """opendal's percent_encode_path: keep alphanumerics and / - _ . ! ~ * ' ( )."""
    return quote(key, safe="/-_.!~*'()")


class OpendalLike:
    """Sends requests shaped like opendal 0.59.x's OSS service, V1-signed like reqsign 3.2.0."""

    def __init__(self, secret=None, virtual_host=False):
        self.secret = E.sk if secret is None else secret
        self.virtual_host = virtual_host
        self.bucket = E.bucket_name
        if virtual_host:  # endpoint http://<bucket>.127.0.0.1:PORT, no bucket in the path
            self.authority = f"{E.bucket_name}.127.0.0.1:{E.port}"
            self.base = ""
        else:             # addressing_style = "path": http://127.0.0.1:PORT/<bucket>
            self.authority = f"127.0.0.1:{E.port}"
            self.base = "/" + E.bucket_name

    def string_to_sign(self, method, target, headers, date):
        path, _, query = target.partition("?")
        lower = {k.lower(): v for k, v in headers.items()}
        s = f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n{date}\n"
        oss = sorted((k, v) for k, v in lower.items() if k.startswith("x-oss-"))
        if oss:
            s += "\n".join(f"{k}:{v}" for k, v in oss) + "\n"
        pairs = []
        for pair in query.split("&") if query else []:
            k, _, v = pair.partition("=")
            k, v = unquote(k), unquote(v)
            if k in REQSIGN_SUBRESOURCES:
                pairs.append((k, v))
        pairs.sort(key=lambda kv: kv[0])
        decoded = unquote(path or "/")
        resource = f"/{self.bucket}{decoded}" if self.authority.startswith(self.bucket + ".") else decoded
        if pairs:
            resource += "?" + "&".join(k if not v else f"{k}={v}" for k, v in pairs)
        return s + resource

    def send(self, method, rel, headers=None, body=b""):
        """rel: what opendal appends to its endpoint: "/<encoded key>[?q]", "?list-type=2..", "/?delete"."""
        headers = dict(headers or {})
        target = self.base + rel
        if not target.startswith("/"):  # http::Uri gives "http://host:port?q" the path "/"
            target = "/" + target
        date = email.utils.formatdate(usegmt=True)
        sts = self.string_to_sign(method, target, headers, date)
        sig = base64.b64encode(hmac.new(self.secret.encode(), sts.encode("utf-8"), hashlib.sha1).digest()).decode()
        headers["Date"] = date
        headers["Authorization"] = f"OSS {E.ak}:{sig}"
        headers["Host"] = self.authority
        if method in ("PUT", "POST") or body:
            headers.setdefault("Content-Length", str(len(body)))
        conn = http.client.HTTPConnection("127.0.0.1", E.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v.encode("utf-8") if isinstance(v, str) else v)
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()


def opendal_list(client, prefix, recursive, limit=None, start_after=None):
    """opendal OssLister: GET <endpoint>?list-type=2&delimiter=/&prefix=..&max-keys=..&continuation-token=.."""
    token, entries = "", []
    while True:
        q = "?list-type=2"
        if not recursive:
            q += "&delimiter=/"
        if prefix:
            q += "&prefix=" + opendal_path(prefix)
        if limit:
            q += f"&max-keys={limit}"
        if token:
            q += "&continuation-token=" + opendal_path(token)
        if start_after and not token:
            q += "&start-after=" + opendal_path(start_after)
        status, _, body = client.send("GET", q)
        check(status == 200, f"list status {status}: {body[:300]}")
        root = ET.fromstring(body)
        entries += [("dir", p.findtext("Prefix")) for p in root.findall("CommonPrefixes")]
        for c in root.findall("Contents"):
            entries.append(("file", c.findtext("Key"), int(c.findtext("Size")), c.findtext("ETag"),
                            c.findtext("LastModified")))
        if root.findtext("IsTruncated") != "true":
            return entries
        token = root.findtext("NextContinuationToken") or ""
        check(token, "truncated page without NextContinuationToken")


def xml_text(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def obj(key):
    """The part opendal appends to its endpoint for an object: "/" + percent_encode_path(key)."""
    return "/" + opendal_path(key)


def opendal_flow(client):
    key = "opendal/dir/file name+(1)!*'~%.bin"
    enc = obj(key)
    data = os.urandom(300 * 1024)

    # write_once: PUT with Content-Length, Content-Type, x-oss-meta-*, (create-only) x-oss-forbid-overwrite
    client.send("DELETE", enc)
    status, h, body = client.send("PUT", enc, {"Content-Type": "application/octet-stream",
                                               "x-oss-meta-artifact": "yes", "x-oss-forbid-overwrite": "true"}, data)
    check(status == 200 and h.get("etag") == '"%s"' % hashlib.md5(data).hexdigest().upper(),
          f"put {status} {body[:300]}")
    status, _, body = client.send("PUT", enc, {"x-oss-forbid-overwrite": "true"}, b"again")
    check(status == 409 and error_fields(body)["Code"] == "FileAlreadyExists", f"create-only put {status}")
    status, _, _ = client.send("PUT", obj("opendal/empty"), {}, b"")
    check(status == 200, f"empty put {status}")

    # stat: HEAD
    status, h, _ = client.send("HEAD", enc)
    check(status == 200 and int(h["content-length"]) == len(data) and h.get("x-oss-meta-artifact") == "yes", "head")
    check(email.utils.parsedate_to_datetime(h["last-modified"]) is not None, "last-modified parses")
    status, _, body = client.send("HEAD", obj("opendal/absent"))
    check(status == 404 and body == b"", "head absent")
    status, _, body = client.send("GET", obj("opendal/absent"))
    check(status == 404 and error_fields(body)["Code"] == "NoSuchKey", "get absent")

    # read: GET, ranges with x-oss-range-behavior: standard, conditions
    std = {"x-oss-range-behavior": "standard"}
    status, h, body = client.send("GET", enc)
    check(status == 200 and body == data, "get")
    status, h, body = client.send("GET", enc, dict(std, Range="bytes=10-19"))
    check(status == 206 and body == data[10:20] and h["content-range"] == f"bytes 10-19/{len(data)}", "range")
    status, h, body = client.send("GET", enc, dict(std, Range=f"bytes={len(data) - 5}-"))
    check(status == 206 and body == data[-5:], "open range")
    status, h, body = client.send("GET", enc, dict(std, Range="bytes=-7"))
    check(status == 206 and body == data[-7:], "suffix range")
    status, h, body = client.send("GET", enc, dict(std, Range=f"bytes={len(data)}-"))
    check(status == 416 and error_fields(body)["Code"] == "InvalidRange", f"range past end {status}")
    etag = '"%s"' % hashlib.md5(data).hexdigest().upper()
    status, _, _ = client.send("GET", enc, {"If-None-Match": etag})
    check(status == 304, f"if-none-match {status}")
    status, _, body = client.send("GET", enc, {"If-Match": '"nope"'})
    check(status == 412 and error_fields(body)["Code"] == "PreconditionFailed", f"if-match {status}")
    status, _, body = client.send("GET", enc, {"If-Match": etag,
                                               "If-Modified-Since": email.utils.formatdate(0, usegmt=True)})
    check(status == 200 and body == data, "if-match + if-modified-since")
    status, _, body = client.send("GET", enc, {"If-Unmodified-Since": email.utils.formatdate(0, usegmt=True)})
    check(status == 412, f"if-unmodified-since {status}")
    status, h, body = client.send("GET", enc + "?response-content-disposition="
                                  + opendal_path('attachment; filename="x.bin"'))
    check(status == 200 and h.get("content-disposition") == 'attachment; filename="x.bin"',
          f"get with response-content-disposition {status} {body[:300]}")
    status, _, _ = client.send("HEAD", enc, {"If-Match": '"nope"'})
    check(status == 412, f"stat if-match {status}")

    # multipart: ?uploads, ?partNumber=N&uploadId=, ?uploadId= (complete), DELETE ?uploadId= (abort)
    mkey = obj("opendal/dir/multi part.bin")
    client.send("DELETE", mkey)
    status, _, body = client.send("POST", mkey + "?uploads", {"Content-Type": "application/x-tar",
                                                              "x-oss-forbid-overwrite": "true"})
    check(status == 200, f"initiate {status} {body[:300]}")
    upload_id = ET.fromstring(body).findtext("UploadId")
    chunks = [os.urandom(128 * 1024), os.urandom(128 * 1024), os.urandom(10)]
    etags = []
    for n, chunk in enumerate(chunks, start=1):
        status, h, body = client.send("PUT", f"{mkey}?partNumber={n}&uploadId={opendal_path(upload_id)}",
                                      {"Content-Length": str(len(chunk))}, chunk)
        check(status == 200 and h.get("etag"), f"upload part {n}: {status} {body[:300]}")
        etags.append(h["etag"])
    swapped = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{etags[n - 1].replace(chr(34), '&quot;')}</ETag></Part>"
        for n in (2, 1, 3)) + "</CompleteMultipartUpload>"
    status, _, body = client.send("POST", f"{mkey}?uploadId={opendal_path(upload_id)}",
                                  {"Content-Type": "application/xml"}, swapped.encode())
    check(status == 400 and error_fields(body)["Code"] == "InvalidPartOrder", f"part order {status}")
    complete = "<CompleteMultipartUpload>" + "".join(
        f"<Part><PartNumber>{n}</PartNumber><ETag>{e.replace(chr(34), '&quot;')}</ETag></Part>"
        for n, e in enumerate(etags, start=1)) + "</CompleteMultipartUpload>"
    status, h, body = client.send("POST", f"{mkey}?uploadId={opendal_path(upload_id)}",
                                  {"Content-Type": "application/xml", "x-oss-forbid-overwrite": "true"},
                                  complete.encode())
    check(status == 200 and ET.fromstring(body).findtext("ETag").endswith('-3"'), f"complete {status} {body[:300]}")
    status, h, body = client.send("GET", mkey)
    check(status == 200 and body == b"".join(chunks) and h.get("content-type") == "application/x-tar",
          "multipart content")
    status, _, body = client.send("POST", mkey + "?uploads", {"x-oss-forbid-overwrite": "true"})
    check(status == 409 and error_fields(body)["Code"] == "FileAlreadyExists", "create-only initiate")
    status, _, body = client.send("POST", mkey + "?uploads")
    abort_id = ET.fromstring(body).findtext("UploadId")
    status, _, _ = client.send("DELETE", f"{mkey}?uploadId={opendal_path(abort_id)}")
    check(status == 204, f"abort {status}")
    status, _, body = client.send("PUT", f"{mkey}?partNumber=1&uploadId={opendal_path(abort_id)}", {}, b"late")
    check(status == 404 and error_fields(body)["Code"] == "NoSuchUpload", f"part after abort {status}")

    # append: POST ?append&position=N
    akey = obj("opendal/appended.log")
    client.send("DELETE", akey)
    status, h, _ = client.send("POST", akey + "?append&position=0", {}, b"12345")
    check(status == 200 and h.get("x-oss-next-append-position") == "5", f"append {status}")
    status, h, _ = client.send("POST", akey + "?append&position=5", {}, b"678")
    check(status == 200 and h.get("x-oss-next-append-position") == "8", f"append 2 {status}")

    # copy: PUT with x-oss-copy-source: /<bucket>/<percent-encoded key>
    ckey = obj("opendal/dir/copy of file.bin")
    status, _, body = client.send("PUT", ckey, {"x-oss-copy-source": f"/{client.bucket}{enc}"})
    check(status == 200 and ET.fromstring(body).tag == "CopyObjectResult", f"copy {status} {body[:300]}")
    status, _, body = client.send("GET", ckey)
    check(status == 200 and body == data, "copy content")

    # list: GET <endpoint>?list-type=2 (path style: ".../<bucket>?..." without a trailing slash)
    for i in range(5):
        client.send("PUT", obj(f"opendal/many/{i:02d}"), {}, b"x")
    entries = opendal_list(client, "opendal/", recursive=False, limit=2)
    check([e[1] for e in entries if e[0] == "dir"] == ["opendal/dir/", "opendal/many/"], f"dirs {entries}")
    check([e[1] for e in entries if e[0] == "file"] == ["opendal/appended.log", "opendal/empty"], f"files {entries}")
    entries = opendal_list(client, "opendal/", recursive=True, limit=3)
    files = [e[1] for e in entries]
    want = sorted(["opendal/appended.log", "opendal/empty", key, "opendal/dir/multi part.bin",
                   "opendal/dir/copy of file.bin"] + [f"opendal/many/{i:02d}" for i in range(5)])
    check(files == want, f"recursive list {files} != {want}")
    entries = opendal_list(client, "opendal/many/", recursive=True, start_after="opendal/many/02")
    check([e[1] for e in entries] == ["opendal/many/03", "opendal/many/04"], f"start-after {entries}")
    check(opendal_list(client, "opendal/nothing-here/", recursive=False) == [], "empty listing")
    check(all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e[4]) for e in opendal_list(client, "opendal/", True)),
          "LastModified format")

    # batch delete: POST <endpoint>/?delete, Content-MD5, Content-Type: application/xml
    doomed = [f"opendal/many/{i:02d}" for i in range(5)] + ["opendal/many/never", "opendal/a&b<c>"]
    xml = "<Delete>" + "".join(f"<Object><Key>{xml_text(k)}</Key></Object>" for k in doomed) + "</Delete>"
    md5 = base64.b64encode(hashlib.md5(xml.encode()).digest()).decode()
    status, _, body = client.send("POST", "/?delete", {"Content-Type": "application/xml", "CONTENT-MD5": md5},
                                  xml.encode())
    check(status == 200, f"batch delete {status} {body[:300]}")
    deleted = [d.findtext("Key") for d in ET.fromstring(body).findall("Deleted")]
    check(sorted(deleted) == sorted(doomed), f"deleted {deleted}")
    check(opendal_list(client, "opendal/many/", recursive=True) == [], "batch delete removed the keys")
    status, _, body = client.send("POST", "/?delete", {"Content-Type": "application/xml", "CONTENT-MD5": "AAAA"},
                                  xml.encode())
    check(status == 400 and error_fields(body)["Code"] == "InvalidDigest", "bad Content-MD5")
    status, _, _ = client.send("DELETE", obj("opendal/never-existed"))
    check(status == 204, f"delete absent {status}")
    for k in (key, "opendal/dir/multi part.bin", "opendal/dir/copy of file.bin", "opendal/appended.log",
              "opendal/empty"):
        client.send("DELETE", obj(k))


@test
def opendal_shaped_requests_path_style():
    """addressing_style = "path": http://127.0.0.1:PORT/<bucket>/<key>; list at /<bucket>?list-type=2."""
    opendal_flow(OpendalLike())


@test
def opendal_shaped_requests_virtual_host():
    """Default addressing (virtual host): Host: <bucket>.127.0.0.1:PORT, key at /<key>."""
    opendal_flow(OpendalLike(virtual_host=True))


@test
def opendal_shaped_requests_with_wrong_secret():
    client = OpendalLike(secret=E.sk[:-1] + ("A" if E.sk[-1] != "A" else "B"))
    for method, rel, body in (("PUT", obj("opendal/x"), b"x"), ("GET", obj("opendal/x"), b""),
                              ("HEAD", obj("opendal/x"), b""), ("GET", "?list-type=2&delimiter=/", b""),
                              ("POST", obj("opendal/x") + "?uploads", b""), ("DELETE", obj("opendal/x"), b""),
                              ("POST", "/?delete", b"<Delete><Object><Key>opendal/x</Key></Object></Delete>")):
        status, _, data = client.send(method, rel, {}, body)
        check(status == 403, f"{method} {rel} with a wrong secret: {status}")
        if method != "HEAD":
            check(error_fields(data)["Code"] == "SignatureDoesNotMatch", f"{method} {rel}: {data[:300]}")


@test
def robustness():
    """Rejected big bodies, clients that vanish mid-transfer, concurrent parts."""
    import socket
    import threading
    b = E.bucket()
    # a 20 MiB body with a wrong signature: clean 403, and the same keep-alive session keeps working
    session = oss2.Session()
    bad = oss2.Bucket(oss2.Auth(E.ak, E.sk + "x"), E.endpoint, E.bucket_name, session=session)
    expect_error(lambda: bad.put_object("robust/big-bad.bin", PatternFile(20 * 1024 * 1024)), 403,
                 "SignatureDoesNotMatch")
    good = oss2.Bucket(oss2.Auth(E.ak, E.sk), E.endpoint, E.bucket_name, session=session)
    check(good.put_object("robust/after.txt", b"ok").status == 200, "session reusable after a rejected body")
    check(not b.object_exists("robust/big-bad.bin"), "rejected body stored nothing")

    def raw(method, key, extra_headers, payload, read=None):
        url = f"{E.endpoint}/{E.bucket_name}/{quote(key)}"
        req = oss2.http.Request(method, url, headers=dict(extra_headers))
        oss2.Auth(E.ak, E.sk)._sign_request(req, E.bucket_name, key)
        lines = [f"{method} /{E.bucket_name}/{quote(key)} HTTP/1.1", f"Host: 127.0.0.1:{E.port}"]
        lines += [f"{k}: {v}" for k, v in req.headers.items() if v is not None]
        sock = socket.create_connection(("127.0.0.1", E.port))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        data = sock.recv(read) if read else b""
        sock.close()
        return data

    # PUT that promises 1 MiB, sends 10 bytes and hangs up: no object, no temp file left behind
    raw("PUT", "robust/truncated.bin", {"Content-Length": str(1024 * 1024)}, b"0123456789")
    time.sleep(0.3)
    check(not b.object_exists("robust/truncated.bin"), "truncated upload became an object")
    # GET of a big object, dropped after the first bytes: the server keeps serving
    b.put_object("robust/big.bin", PatternFile(8 * 1024 * 1024))
    head = raw("GET", "robust/big.bin", {}, b"", read=4096)
    check(head.startswith(b"HTTP/1.1 200"), f"raw get: {head[:60]!r}")
    check(b.get_object("robust/after.txt").read() == b"ok", "server healthy after an aborted download")
    # 8 parts uploaded concurrently to one upload, with reads going on at the same time
    up = b.init_multipart_upload("robust/parallel.bin")
    pieces = [os.urandom(128 * 1024) for _ in range(8)]
    results, errors = {}, []

    def upload(n):
        try:
            results[n] = E.bucket().upload_part("robust/parallel.bin", up.upload_id, n, pieces[n - 1])
            E.bucket().get_object("robust/after.txt").read()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(not errors, f"parallel parts: {errors}")
    b.complete_multipart_upload("robust/parallel.bin", up.upload_id,
                                [oss2.models.PartInfo(n, results[n].etag, size=len(pieces[n - 1]),
                                                      part_crc=results[n].crc) for n in range(1, 9)])
    check(b.get_object("robust/parallel.bin").read() == b"".join(pieces), "parallel multipart content")
    b.batch_delete_objects(["robust/after.txt", "robust/big.bin", "robust/parallel.bin"])


# --------------------------------------------------------------------------- large bodies


def server_rss_kib():
    with open(f"/proc/{E.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class PatternFile(io.RawIOBase):
    """A readable, seekable stream of N pseudo-random bytes generated on the fly."""

    def __init__(self, size, seed=b"ag"):
        self.size, self.pos = size, 0
        block = b""
        h = seed
        while len(block) < 1024 * 1024 + 4096:
            h = hashlib.sha256(h).digest()
            block += h * 64
        self.block = block[: 1024 * 1024 + 4093]  # an odd length, so the pattern never aligns

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, off, whence=0):
        self.pos = off if whence == 0 else (self.pos + off if whence == 1 else self.size + off)
        return self.pos

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos, 1024 * 1024)
        if n <= 0:
            return b""
        start = self.pos % len(self.block)
        out = (self.block[start:] + self.block)[:n]
        self.pos += n
        return out

    def readinto(self, b):
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def digest_of(stream):
    h = hashlib.md5()
    while True:
        d = stream.read(1024 * 1024)
        if not d:
            return h.hexdigest()
        h.update(d)


@test
def large_bodies_are_streamed():
    b = E.bucket()
    size = E.big_mib * 1024 * 1024
    before = server_rss_kib()
    src = PatternFile(size)
    want = digest_of(PatternFile(size))
    t = time.time()
    r = b.put_object("big/single.bin", src)  # oss2 streams the file object; checks CRC
    check(r.status == 200 and r.etag == want.upper(), "big put etag")
    g = b.get_object("big/single.bin")
    check(digest_of(g) == want, "big get content")
    g = b.get_object("big/single.bin", byte_range=(size - 1000, size - 1))
    tail = PatternFile(size)
    tail.seek(size - 1000)
    check(g.read() == tail.read(1000), "big tail range")
    # the same bytes through multipart, parts of 1/4 of the body
    part = size // 4
    up = b.init_multipart_upload("big/multi.bin")
    parts, src = [], PatternFile(size)
    for n in range(1, 5):
        length = part if n < 4 else size - 3 * part
        piece = oss2.utils.SizedFileAdapter(src, length)
        pr = b.upload_part("big/multi.bin", up.upload_id, n, piece)
        parts.append(oss2.models.PartInfo(n, pr.etag, size=length, part_crc=pr.crc))
    b.complete_multipart_upload("big/multi.bin", up.upload_id, parts)
    check(digest_of(b.get_object("big/multi.bin")) == want, "big multipart content")
    after = server_rss_kib()
    grown_mib = (after - before) / 1024
    print(f"      {E.big_mib} MiB x 4 transfers in {time.time() - t:.1f}s; server RSS {before // 1024} -> {after // 1024} MiB")
    check(grown_mib < min(48, E.big_mib / 2), f"server memory grew by {grown_mib:.0f} MiB for a {E.big_mib} MiB body")
    b.batch_delete_objects(["big/single.bin", "big/multi.bin"])


# --------------------------------------------------------------------------- main


def load_env(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                values[k] = v
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", help="use a running server described by this oss.env (its oss.pid sits next to it)")
    ap.add_argument("--big-mib", type=int, default=64, help="size of the large-body test (MiB)")
    ap.add_argument("--keep", action="store_true", help="keep the private instance's state directory")
    ap.add_argument("-k", dest="only", help="run only tests whose name contains this")
    args = ap.parse_args()
    E.big_mib = args.big_mib

    state_dir = None
    if args.env:
        env = load_env(args.env)
        pid_file = os.path.join(os.path.dirname(os.path.abspath(args.env)), "oss.pid")
    else:
        state_dir = tempfile.mkdtemp(prefix="oss-selftest-")
        subprocess.run([os.path.join(HERE, "start.sh"), state_dir], check=True)
        env = load_env(os.path.join(state_dir, "oss.env"))
        pid_file = os.path.join(state_dir, "oss.pid")
    E.endpoint = env["AG_TEST_OSS_ENDPOINT"]
    E.port = urlsplit(E.endpoint).port
    E.ak = env["AG_TEST_OSS_ACCESS_KEY_ID"]
    E.sk = env["AG_TEST_OSS_ACCESS_KEY_SECRET"]
    E.bucket_name = env["AG_TEST_OSS_BUCKET"]
    with open(pid_file) as f:
        E.pid = int(f.read().strip())

    failed = []
    try:
        for fn in TESTS:
            if args.only and args.only not in fn.__name__:
                continue
            t = time.time()
            try:
                fn()
                print(f"PASS  {fn.__name__} ({time.time() - t:.2f}s)")
            except Exception:  # noqa: BLE001
                failed.append(fn.__name__)
                print(f"FAIL  {fn.__name__}")
                traceback.print_exc()
    finally:
        if state_dir is not None:
            try:
                os.kill(E.pid, 15)
                for _ in range(50):
                    os.kill(E.pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
            if failed or args.keep:
                print(f"state directory kept: {state_dir} (log: {state_dir}/oss.log)")
            else:
                shutil.rmtree(state_dir, ignore_errors=True)
    print(f"{len(failed)} failed" if failed else "all passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
