// Uploading one file: hash it in the browser, then PUT it with XMLHttpRequest (for upload
// progress events) and the digest in `Content-Digest`, so the server refuses a body that arrived
// different. The first attempt is create-only (`If-None-Match: *`); replacing needs the caller
// to pass the current ETag (`If-Match`), which the page does only after the user confirms.

import { hashBlob, toBase64, toHex } from './sha256.js';
import { ApiError, artifactPath, authHeaders } from './api.js';

export async function digestOf(file, onProgress) {
  const bytes = await hashBlob(file, onProgress);
  return { hex: toHex(bytes), field: `sha-256=:${toBase64(bytes)}:` };
}

/**
 * PUT the file. `replace`: `null` for create-only, or the quoted ETag to replace.
 * Resolves with the server's JSON ({path,size,etag,sha256,content_type,created}).
 */
export function put({ mount, path, file, digest, replace = null, onProgress = () => {} }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', artifactPath(mount, path));
    const headers = {
      ...authHeaders(),
      'Content-Type': 'application/octet-stream',
      'Content-Digest': digest.field,
      Accept: 'application/json',
    };
    if (replace) headers['If-Match'] = replace;
    else headers['If-None-Match'] = '*';
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* empty */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        const err = body && body.error;
        reject(new ApiError(xhr.status, err ? err.code : `http_${xhr.status}`, err ? err.message : `${xhr.status} ${xhr.statusText}`));
      }
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', 'the connection failed during the upload')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'the upload was cancelled')));
    xhr.send(file);
  });
}
