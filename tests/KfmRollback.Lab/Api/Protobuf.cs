using System.Text;
using System.Text.Json.Nodes;

namespace KfmRollback.Lab.Api;

/// <summary>
/// Just enough of the Kubernetes protobuf encoding ("k8s\0" + runtime.Unknown) to read the
/// SelfSubjectAccessReview that kubectl auth can-i sends as protobuf.
/// </summary>
public static class Protobuf
{
    static readonly byte[] Magic = [0x6b, 0x38, 0x73, 0x00];

    static IEnumerable<(int field, int wire, ReadOnlyMemory<byte> bytes, ulong varint)> Fields(ReadOnlyMemory<byte> buf)
    {
        int i = 0;
        while (i < buf.Length)
        {
            var key = ReadVarint(buf.Span, ref i);
            var field = (int)(key >> 3); var wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, wire, default, ReadVarint(buf.Span, ref i)); break;
                case 2:
                    {
                        var len = (int)ReadVarint(buf.Span, ref i);
                        yield return (field, wire, buf.Slice(i, len), 0);
                        i += len;
                        break;
                    }
                case 1: i += 8; break;
                case 5: i += 4; break;
                default: throw ApiException.BadRequest("unsupported protobuf wire type");
            }
        }
    }

    static ulong ReadVarint(ReadOnlySpan<byte> s, ref int i)
    {
        ulong v = 0; int shift = 0;
        while (true)
        {
            var b = s[i++];
            v |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
            shift += 7;
        }
    }

    public static bool IsK8sProtobuf(byte[] body) => body.Length >= 4 && body.AsSpan(0, 4).SequenceEqual(Magic);

    /// <summary>Decodes a protobuf SelfSubjectAccessReview into its JSON form (spec only).</summary>
    public static JsonObject DecodeSsar(byte[] body)
    {
        ReadOnlyMemory<byte> raw = default;
        foreach (var f in Fields(body.AsMemory(4))) if (f.field == 2 && f.wire == 2) raw = f.bytes;
        var spec = new JsonObject();
        foreach (var f in Fields(raw))
        {
            if (f.field != 2 || f.wire != 2) continue;
            foreach (var s in Fields(f.bytes))
            {
                if (s.wire != 2) continue;
                if (s.field == 1)
                {
                    var ra = new JsonObject();
                    string[] names = ["", "namespace", "verb", "group", "version", "resource", "subresource", "name"];
                    foreach (var a in Fields(s.bytes))
                        if (a.wire == 2 && a.field < names.Length) ra[names[a.field]] = Encoding.UTF8.GetString(a.bytes.Span);
                    spec["resourceAttributes"] = ra;
                }
                else if (s.field == 2)
                {
                    var nra = new JsonObject();
                    foreach (var a in Fields(s.bytes))
                        if (a.wire == 2) nra[a.field == 1 ? "path" : "verb"] = Encoding.UTF8.GetString(a.bytes.Span);
                    spec["nonResourceAttributes"] = nra;
                }
            }
        }
        return new JsonObject { ["apiVersion"] = "authorization.k8s.io/v1", ["kind"] = "SelfSubjectAccessReview", ["spec"] = spec };
    }
}
