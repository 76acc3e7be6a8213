namespace KfmRollback.Engine.Configuration.Binding;

/// <summary>
/// A model class bound from a YAML mapping. <see cref="Validate"/> checks the rules one key's
/// type cannot express (either/or keys, cross-references); it runs after the whole file is bound.
/// </summary>
internal interface IConfigSection
{
    void Validate(ValidationScope scope);
}
