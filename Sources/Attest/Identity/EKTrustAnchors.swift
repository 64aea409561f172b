public import X509

/// The EK trust anchors of a verifier: TPM vendors' root certificates and the intermediates published
/// with them, from a folder the security team controls (TCG EK Credential Profile §2.2.1.5, vendors' CA
/// certificate downloads). Nothing the device sends ever becomes an anchor.
///
/// A self-issued certificate (subject equals issuer) in the folder is a root: an anchor is trusted because
/// the verifier's owner put it there, not because it signs itself, so Nuvoton's roots repaired from
/// non-DER encodings (see ``CACertificateFolder``) are anchors like any other. Every other certificate
/// in the folder is an intermediate.
public struct EKTrustAnchors: Sendable {
    /// Self-issued certificates from the folder: the anchors.
    public let roots: [Certificate]
    /// Every other certificate from the folder, used to build paths.
    public let intermediates: [Certificate]
    /// Where the anchors were read from, for messages.
    public let source: String

    /// Sorts `certificates` into roots (subject equals issuer) and intermediates; `source` names them in messages.
    public init(certificates: [Certificate], source: String) {
        var roots: [Certificate] = []
        var intermediates: [Certificate] = []
        for cert in certificates {
            if cert.subject == cert.issuer { roots.append(cert) } else { intermediates.append(cert) }
        }
        self.roots = roots
        self.intermediates = intermediates
        self.source = source
    }

    /// Reads a vendor CA folder (PEM bundles and DER files mixed, as vendors publish them).
    public init(folder path: String) throws(AttestError) {
        self.init(certificates: try CACertificateFolder(path: path).certificates, source: path)
    }
}
