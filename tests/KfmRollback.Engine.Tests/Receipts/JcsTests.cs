using System.Text;
using System.Text.Json.Nodes;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Receipts;
using Xunit;

namespace KfmRollback.Engine.Tests.Receipts;

/// <summary>Vectors from RFC 8785 itself (§3.2.2, §3.2.3, Appendix B), typed in by hand.</summary>
public class JcsTests
{
    [Fact]
    public void Rfc8785_Section3_2_2_SampleInput_CanonicalizesToTheRfcOutput()
    {
        var input = """
            {
              "numbers": [333333333.33333329, 1E30, 4.50,
                          2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """;
        var expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
                       + "\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
        Assert.Equal(expected, Jcs.CanonicalizeToString(JsonNode.Parse(input)));
    }

    [Fact]
    public void Rfc8785_Section3_2_2_SampleOutput_HasTheRfcUtf8Bytes()
    {
        var bytes = Jcs.Canonicalize(JsonNode.Parse("{\"string\":\"\\u20ac$\\u000F\"}"));
        // € is E2 82 AC in UTF-8; \u000f stays escaped with lowercase hex.
        Assert.Equal(new byte[] { 0x7b, 0x22, 0x73, 0x74, 0x72, 0x69, 0x6e, 0x67, 0x22, 0x3a, 0x22, 0xe2, 0x82, 0xac, 0x24,
            0x5c, 0x75, 0x30, 0x30, 0x30, 0x66, 0x22, 0x7d }, bytes);
    }

    [Fact]
    public void Rfc8785_Section3_2_3_SortsPropertiesByUtf16CodeUnits()
    {
        var input = """
            {
              "\u20ac": "Euro Sign",
              "\r": "Carriage Return",
              "\ufb33": "Hebrew Letter Dalet With Dagesh",
              "1": "One",
              "\ud83d\ude00": "Emoji: Grinning Face",
              "\u0080": "Control",
              "\u00f6": "Latin Small Letter O With Diaeresis"
            }
            """;
        var canonical = (JsonObject)JsonNode.Parse(Jcs.CanonicalizeToString(JsonNode.Parse(input)))!;
        var values = canonical.Select(p => (string)p.Value!).ToArray();
        Assert.Equal(new[]
        {
            "Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign",
            "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh",
        }, values);
    }

    [Fact]
    public void FrenchSample_IgnoresLocaleCollation()
    {
        var input = "{\"peach\":\"This sorting order\",\"péché\":\"is wrong according to French\",\"pêche\":\"but canonicalization MUST\",\"sin\":\"ignore locale\"}";
        Assert.Equal(input, Jcs.CanonicalizeToString(JsonNode.Parse(input)));
    }

    [Theory]
    [InlineData("0000000000000000", "0")]
    [InlineData("8000000000000000", "0")]
    [InlineData("0000000000000001", "5e-324")]
    [InlineData("8000000000000001", "-5e-324")]
    [InlineData("7fefffffffffffff", "1.7976931348623157e+308")]
    [InlineData("ffefffffffffffff", "-1.7976931348623157e+308")]
    [InlineData("4340000000000000", "9007199254740992")]
    [InlineData("c340000000000000", "-9007199254740992")]
    [InlineData("4430000000000000", "295147905179352830000")]
    [InlineData("44b52d02c7e14af5", "9.999999999999997e+22")]
    [InlineData("44b52d02c7e14af6", "1e+23")]
    [InlineData("44b52d02c7e14af7", "1.0000000000000001e+23")]
    [InlineData("444b1ae4d6e2ef4e", "999999999999999700000")]
    [InlineData("444b1ae4d6e2ef4f", "999999999999999900000")]
    [InlineData("444b1ae4d6e2ef50", "1e+21")]
    [InlineData("3eb0c6f7a0b5ed8c", "9.999999999999997e-7")]
    [InlineData("3eb0c6f7a0b5ed8d", "0.000001")]
    [InlineData("41b3de4355555553", "333333333.3333332")]
    [InlineData("41b3de4355555554", "333333333.33333325")]
    [InlineData("41b3de4355555555", "333333333.3333333")]
    [InlineData("41b3de4355555556", "333333333.3333334")]
    [InlineData("41b3de4355555557", "333333333.33333343")]
    [InlineData("becbf647612f3696", "-0.0000033333333333333333")]
    [InlineData("43143ff3c1cb0959", "1424953923781206.2")]
    public void Rfc8785_AppendixB_NumberSamples(string ieeeHex, string expected)
    {
        var d = BitConverter.Int64BitsToDouble(Convert.ToInt64(ieeeHex, 16));
        Assert.Equal(expected, Jcs.FormatNumber(d));
        // And through a parsed document, the path receipts actually take.
        Assert.Equal($"[{expected}]", Jcs.CanonicalizeToString(JsonNode.Parse($"[{d.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}]")));
    }

    [Theory]
    [InlineData("7fffffffffffffff")]
    [InlineData("7ff0000000000000")]
    public void Rfc8785_AppendixB_NaNAndInfinity_AreErrors(string ieeeHex)
    {
        var d = BitConverter.Int64BitsToDouble(Convert.ToInt64(ieeeHex, 16));
        var ex = Assert.Throws<KfmException>(() => Jcs.FormatNumber(d));
        Assert.Equal("JcsNumberOutOfRange", ex.ErrorId);
    }

    [Fact]
    public void NumberBeyondDoubleRange_IsRefused()
    {
        Assert.Throws<KfmException>(() => Jcs.Canonicalize(JsonNode.Parse("[1e400]")));
    }

    [Fact]
    public void ArraysKeepOrder_NestedObjectsAreSorted_WhitespaceDropped()
    {
        var input = "[\n 56,\n {\n  \"d\": true,\n  \"10\": null,\n  \"1\": [ ]\n }\n]";
        Assert.Equal("[56,{\"1\":[],\"10\":null,\"d\":true}]", Jcs.CanonicalizeToString(JsonNode.Parse(input)));
    }

    [Fact]
    public void ControlCharactersUseShortEscapesOrLowercaseUnicode_OthersAreLiteral()
    {
        var node = JsonValue.Create("\b\t\n\f\r\u0001\u001f/\u2028é");
        Assert.Equal("\"\\b\\t\\n\\f\\r\\u0001\\u001f/\u2028é\"", Jcs.CanonicalizeToString(node));
    }

    [Fact]
    public void LoneSurrogate_IsRefused()
    {
        var ex = Assert.Throws<KfmException>(() => Jcs.Canonicalize(JsonValue.Create("a\ud800b")));
        Assert.Equal("JcsInvalidString", ex.ErrorId);
    }

    [Fact]
    public void IntegerAndDecimalBackedNodes_FormatLikeDoubles()
    {
        var node = new JsonObject { ["i"] = 10, ["l"] = 9007199254740993L, ["m"] = 1.50m, ["z"] = -0.0 };
        // 9007199254740993 is not a double; JCS serialises the nearest one.
        Assert.Equal("{\"i\":10,\"l\":9007199254740992,\"m\":1.5,\"z\":0}", Encoding.UTF8.GetString(Jcs.Canonicalize(node)));
    }

    [Fact]
    public void ReceiptDigest_IsSha256OverJcs_NotOverFormatting()
    {
        var a = JsonNode.Parse("{\"b\":1,\"a\":\"x\"}");
        var b = JsonNode.Parse("{\n  \"a\" : \"x\",\n  \"b\" : 1.0\n}");
        Assert.Equal(ReceiptDigest.Of(a), ReceiptDigest.Of(b));
        // sha256 of {"a":"x","b":1}
        var expected = "sha256:" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes("{\"a\":\"x\",\"b\":1}"))).ToLowerInvariant();
        Assert.Equal(expected, ReceiptDigest.Of(a));
    }
}
