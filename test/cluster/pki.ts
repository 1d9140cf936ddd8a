// Throwaway PKI for one local test cluster: a CA, the apiserver's serving
// certificate, client certificates for the admin and the control plane
// components, and the service-account signing key pair.
//
// Node can generate keys but cannot sign X.509 certificates, so certificates
// come from the `openssl` CLI (OpenSSL >= 3.0 for `req -x509 -CA`). EC P-256
// keys keep generation at a few milliseconds per certificate.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Pki {
  ca: KeyPair;
  apiserver: KeyPair;
  admin: KeyPair;
  controllerManager: KeyPair;
  scheduler: KeyPair;
  /** PEM files for signing (controller manager, apiserver) and verifying service-account tokens. */
  serviceAccount: { privateKey: string; publicKey: string };
}

/** The apiserver's ClusterIP in the service range: in-cluster clients dial it by this name and IP. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';

const CERT_DAYS = '30';

export async function createPki(dir: string): Promise<Pki> {
  // A config with no default extensions, so that each certificate gets only
  // the extensions given below (the system config would mark leaves as CAs).
  const config = join(dir, 'openssl.cnf');
  await writeFile(config, '[req]\ndistinguished_name = dn\n[dn]\n');

  const ca = await createCertificate(dir, config, 'ca', {
    subject: '/CN=placement-test-ca',
    extensions: ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'],
  });
  const leaf = (name: string, subject: string, usage: string, san?: string): Promise<KeyPair> =>
    createCertificate(dir, config, name, {
      subject,
      issuer: ca,
      extensions: [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature',
        `extendedKeyUsage=${usage}`,
        ...(san === undefined ? [] : [`subjectAltName=${san}`]),
      ],
    });

  const [apiserver, admin, controllerManager, scheduler] = await Promise.all([
    leaf(
      'apiserver',
      '/CN=kube-apiserver',
      'serverAuth',
      `IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,` +
        'DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local',
    ),
    // system:masters is the group the RBAC bootstrap policy binds to cluster-admin.
    leaf('admin', '/O=system:masters/CN=kubernetes-admin', 'clientAuth'),
    // The controller manager runs every controller under its own identity
    // (see --use-service-account-credentials in local-cluster.ts), so it
    // needs more than its bootstrap role: it is a superuser here.
    leaf('controller-manager', '/O=system:masters/CN=system:kube-controller-manager', 'clientAuth'),
    // The bootstrap RBAC role for the scheduler is bound to this user name.
    leaf('scheduler', '/CN=system:kube-scheduler', 'clientAuth'),
  ]);
  return {
    ca,
    apiserver,
    admin,
    controllerManager,
    scheduler,
    serviceAccount: await writeServiceAccountKeys(dir),
  };
}

interface CertificateRequest {
  subject: string;
  /** Signs with this CA; self-signed when absent. */
  issuer?: KeyPair;
  extensions: string[];
}

async function createCertificate(
  dir: string,
  config: string,
  name: string,
  request: CertificateRequest,
): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const args = ['req', '-x509', '-new', '-config', config, '-nodes'];
  args.push('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256');
  args.push('-keyout', pair.key, '-out', pair.cert, '-days', CERT_DAYS, '-subj', request.subject);
  if (request.issuer !== undefined) {
    args.push('-CA', request.issuer.cert, '-CAkey', request.issuer.key);
  }
  for (const extension of request.extensions) args.push('-addext', extension);
  await run('openssl', args);
  return pair;
}

async function writeServiceAccountKeys(
  dir: string,
): Promise<{ privateKey: string; publicKey: string }> {
  const keys = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const files = { privateKey: join(dir, 'sa.key'), publicKey: join(dir, 'sa.pub') };
  await writeFile(files.privateKey, keys.privateKey, { mode: 0o600 });
  await writeFile(files.publicKey, keys.publicKey);
  return files;
}
