// Ready-to-paste snippets for one artifact: curl, `artifact-gateway fetch`, a FlinkSessionJob and
// an init-container manifest entry. URLs are the server's percent-encoded form, so they are
// quoted for the shell and for YAML without further escaping.

/** Single-quotes a word for a POSIX shell. */
export function shq(s) {
  return /^[A-Za-z0-9_\-.,:/=@%+]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A Kubernetes object name from a file name: `WordCount-1.0.jar` → `wordcount-1-0`. */
export function k8sName(file) {
  const base = file.replace(/\.[A-Za-z0-9]+$/, '').toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return base.replace(/^-+|-+$/g, '').slice(0, 52) || 'job';
}

/**
 * @param {{url: string, name: string, sha256: string|null, anonymous: boolean}} a
 * @returns {{title: string, text: string}[]}
 */
export function snippets({ url, name, sha256, anonymous }) {
  const auth = anonymous ? '' : ' -H "Authorization: Bearer $ARTIFACT_GATEWAY_TOKEN"';
  const curl = `curl -fSL${auth} -o ${shq(name)} ${shq(url)}`;
  const fetchCmd = [
    'artifact-gateway fetch --dest /opt/flink/usrlib',
    anonymous ? null : '--token-file /var/run/secrets/artifacts/token',
    sha256 ? `--sha256 ${sha256}` : null,
    shq(url),
  ].filter(Boolean).join(' \\\n  ');
  const sessionJob = [
    'apiVersion: flink.apache.org/v1beta1',
    'kind: FlinkSessionJob',
    'metadata:',
    `  name: ${k8sName(name)}`,
    'spec:',
    '  deploymentName: session-cluster',
    '  job:',
    `    jarURI: "${url}"`,
    ...(anonymous ? [] : ['    # the operator sends the token from kubernetes.operator.user.artifacts.http.header']),
    '    parallelism: 1',
    '    upgradeMode: stateless',
  ].join('\n');
  const manifest = [
    'artifacts:',
    `  - source: "${url}"`,
    sha256 ? `    sha256: ${sha256}` : '    # no digest recorded on the server: pin one with sha256: <64 hex digits>',
  ].join('\n');
  return [
    { id: 'curl', title: 'curl', text: curl },
    { id: 'fetch', title: 'artifact-gateway fetch', text: fetchCmd },
    { id: 'session-job', title: 'FlinkSessionJob', text: sessionJob },
    { id: 'manifest', title: 'fetch manifest entry (init container)', text: manifest },
  ];
}
