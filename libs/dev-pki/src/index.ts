export { createCertificateAuthority, issueCertificate } from './certificate-issuer.js';
export type { IssuedCertificate, LeafRequest, Validity } from './certificate-issuer.js';
