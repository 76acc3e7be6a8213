using System.Management.Automation;
using KfmRollback.Engine.Core;

namespace KfmRollback.Cmdlets.Common;

/// <summary>Maps engine failures onto PowerShell's error model.</summary>
internal static class ErrorRecords
{
    public static ErrorRecord From(KfmException ex) =>
        new(ex, ex.ErrorId, Category(ex.Kind), ex.Target);

    public static ErrorCategory Category(KfmErrorKind kind) => kind switch
    {
        KfmErrorKind.InvalidArgument => ErrorCategory.InvalidArgument,
        KfmErrorKind.InvalidData => ErrorCategory.InvalidData,
        KfmErrorKind.InvalidOperation => ErrorCategory.InvalidOperation,
        KfmErrorKind.ObjectNotFound => ErrorCategory.ObjectNotFound,
        KfmErrorKind.ResourceExists => ErrorCategory.ResourceExists,
        KfmErrorKind.ResourceBusy => ErrorCategory.ResourceBusy,
        KfmErrorKind.PermissionDenied => ErrorCategory.PermissionDenied,
        KfmErrorKind.SecurityError => ErrorCategory.SecurityError,
        KfmErrorKind.ConnectionError => ErrorCategory.ConnectionError,
        KfmErrorKind.OperationTimeout => ErrorCategory.OperationTimeout,
        KfmErrorKind.WriteError => ErrorCategory.WriteError,
        KfmErrorKind.ReadError => ErrorCategory.ReadError,
        KfmErrorKind.NotInstalled => ErrorCategory.NotInstalled,
        KfmErrorKind.Ambiguous => ErrorCategory.InvalidOperation,
        _ => ErrorCategory.NotSpecified,
    };
}
