using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KfmRollback.Lab;

/// <summary>A throw-away CA and a server certificate for 127.0.0.1 / localhost, made at start.</summary>
public sealed class Certs
{
    public required X509Certificate2 Ca { get; init; }
    public required X509Certificate2 Server { get; init; }
    public string CaPem => Ca.ExportCertificatePem();

    public static Certs Create()
    {
        var notBefore = DateTimeOffset.UtcNow.AddHours(-1);
        var notAfter = DateTimeOffset.UtcNow.AddDays(30);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caReq = new CertificateRequest("CN=kfm-lab-ca, O=KfmRollback Lab", caKey, HashAlgorithmName.SHA256);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
        var caSki = new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false);
        caReq.CertificateExtensions.Add(caSki);
        var ca = caReq.CreateSelfSigned(notBefore, notAfter);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=kfm-lab-apiserver", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromSubjectKeyIdentifier(caSki));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var leaf = req.Create(ca, notBefore, notAfter, serial);
        using var withKey = leaf.CopyWithPrivateKey(key);
        var server = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        var caPublic = X509CertificateLoader.LoadCertificate(ca.Export(X509ContentType.Cert));
        ca.Dispose();
        return new Certs { Ca = caPublic, Server = server };
    }
}
