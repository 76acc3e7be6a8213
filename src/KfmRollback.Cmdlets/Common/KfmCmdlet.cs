using KfmRollback.Engine.Context;
using System.Collections.Concurrent;
using System.Management.Automation;
using KfmRollback.Engine.Core;
using KfmRollback.Engine.Safety;

namespace KfmRollback.Cmdlets.Common;

/// <summary>
/// Base for every KfmRollback cmdlet: turns engine failures into ErrorRecords with stable ids and
/// the right category, gives long work a token that Ctrl+C (StopProcessing) cancels, and keeps
/// every Write* call on the pipeline thread while async engine work runs elsewhere. It is also the
/// boundary where text reaches people: verbose, warning, debug, progress and -WhatIf text passes the
/// one redaction (Safety/Redactor), and an exception that is not the engine's own is rebuilt without
/// the request, headers or body a lower library may keep in it.
/// </summary>
public abstract class KfmCmdlet : PSCmdlet
{
    /// <summary>This module session's engine context, built once and handed to every step service (helm's action.Configuration).</summary>
    private static readonly Lazy<EngineContext> s_engineContext = new(EngineContext.CreateDefault);

    private readonly CancellationTokenSource _stopping = new();

    /// <summary>The engine context of this module session: Kubernetes clients per environment, HTTP, clock, text safety.</summary>
    protected static EngineContext EngineContext => s_engineContext.Value;

    /// <summary>The ref sources (cluster, GitOps, Helm) of this module session.</summary>
    protected static Engine.Refs.RefSources RefSources => s_refSources.Value;

    private static readonly Lazy<Engine.Refs.RefSources> s_refSources = new(() => new Engine.Refs.RefSources(EngineContext));
    private BlockingCollection<Action>? _pipelineQueue;

    /// <summary>Cancelled when the user presses Ctrl+C or the pipeline stops.</summary>
    protected CancellationToken StopToken => _stopping.Token;

    protected sealed override void ProcessRecord() => Guarded(ProcessRecordCore);

    protected abstract void ProcessRecordCore();

    protected sealed override void EndProcessing() => Guarded(EndProcessingCore);

    /// <summary>Engine failures become error records with stable ids; Ctrl+C ends quietly.</summary>
    private void Guarded(Action work)
    {
        try
        {
            work();
        }
        catch (KfmException ex)
        {
            ThrowTerminatingError(ErrorRecords.From(ex is Engine.Configuration.ConfigSectionMissingException missing ? missing.For(MyInvocation.MyCommand.Name) : ex));
        }
        catch (Engine.Rollback.RollbackInterruptedException ex) when (_stopping.IsCancellationRequested)
        {
            // Ctrl+C after a change went out: the pipeline is stopping, so Write* would throw; the host
            // still shows what went out and how to resume, and the stop is reported as a failure.
            Interrupted(ex.Message);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Ctrl+C: PowerShell already reports the stop; nothing half-done to report.
        }
        catch (Exception ex) when (ex is not RuntimeException and not OperationCanceledException)
        {
            // A lower library's exception that escaped the engine (a bug, or a failure nobody wrapped):
            // $Error and Get-Error would show all of it, request and Authorization header included.
            ThrowTerminatingError(ErrorRecords.From(EngineErrors.FromUnexpected(ex, MyInvocation.MyCommand.Name)));
        }
    }

    /// <summary>Work done once all pipeline input is in (a fleet runs here); nothing by default.</summary>
    protected virtual void EndProcessingCore()
    {
    }

    protected override void StopProcessing() => _stopping.Cancel();

    /// <summary>
    /// Says an interruption after a change on the host (as a warning), and makes the stop count as a
    /// failure: a script run with pwsh -File exits non-zero instead of 0 with nothing printed.
    /// </summary>
    private void Interrupted(string message)
    {
        try
        {
            Host.UI.WriteWarningLine(message);
        }
        // A stopped pipeline, or a host whose UI cannot write (hosted runspaces, custom hosts): stderr still says it.
        catch (Exception ex) when (ex is PipelineStoppedException or SystemException)
        {
            Console.Error.WriteLine("WARNING: " + message);
        }
        // pwsh ends a script stopped by Ctrl+C with exit code 0 ($? stays true): a job or CI step
        // would read "succeeded". When pwsh runs a script or command to its end (-File, -Command, not
        // -NoExit), ask it to exit 130 (128 + SIGINT) once the script has stopped; an interactive
        // shell is left as it is.
        if (Host.Name == "ConsoleHost" && RunsAScriptToItsEnd(System.Environment.GetCommandLineArgs()))
        {
            Host.SetShouldExit(InterruptedExitCode);
        }
    }

    /// <summary>The exit code of a script run interrupted after a change: 128 + SIGINT, as shells report Ctrl+C.</summary>
    public const int InterruptedExitCode = 130;

    /// <summary>True for pwsh -File / -Command / -EncodedCommand without -NoExit (any unique prefix, - or /).</summary>
    internal static bool RunsAScriptToItsEnd(IReadOnlyList<string> arguments)
    {
        static bool Is(string argument, string name, int shortest)
        {
            if (argument.Length < 2 || (argument[0] != '-' && argument[0] != '/'))
            {
                return false;
            }
            string body = argument.TrimStart('-', '/');
            return body.Length >= shortest && name.StartsWith(body, StringComparison.OrdinalIgnoreCase);
        }
        bool script = arguments.Skip(1).Any(a => Is(a, "file", 1) || Is(a, "command", 1) || Is(a, "encodedcommand", 1) || Is(a, "ec", 2));
        bool noExit = arguments.Skip(1).Any(a => Is(a, "noexit", 3));
        return script && !noExit;
    }

    /// <summary>
    /// Runs async engine work while pumping output back to this thread, so progress and verbose
    /// messages appear live and Write* is never called from a worker thread.
    /// </summary>
    protected T RunAsync<T>(Func<CancellationToken, Task<T>> work)
    {
        using var queue = new BlockingCollection<Action>();
        _pipelineQueue = queue;
        try
        {
            Task<T> task = Task.Run(async () =>
            {
                try { return await work(_stopping.Token).ConfigureAwait(false); }
                finally { queue.CompleteAdding(); }
            });
            bool stopped = false;
            foreach (Action action in queue.GetConsumingEnumerable())
            {
                if (stopped)
                {
                    continue;
                }
                try
                {
                    action();
                }
                catch (PipelineStoppedException)
                {
                    // Ctrl+C: nothing more can be written, but the work must end on its own so that
                    // what it reports (an interruption after a change) is seen, not lost here.
                    stopped = true;
                }
            }
            return task.GetAwaiter().GetResult();
        }
        finally
        {
            _pipelineQueue = null;
        }
    }

    /// <summary>Calls <paramref name="action"/> on the pipeline thread, from any thread.</summary>
    protected void OnPipelineThread(Action action)
    {
        BlockingCollection<Action>? queue = _pipelineQueue;
        if (queue is null || queue.IsAddingCompleted)
        {
            action();
            return;
        }
        try { queue.Add(action); }
        catch (InvalidOperationException) { /* work finished meanwhile: the message is moot */ }
    }

    /// <summary>How a change should go: applied, only described (-WhatIf), or declined at the prompt.</summary>
    protected enum ChangeMode
    {
        Apply,
        WhatIf,
        Declined,
    }

    /// <summary>
    /// -WhatIf (or $WhatIfPreference) first, so the caller can run the engine's dry run and show the
    /// exact change; then -Force (<paramref name="force"/>) skips the prompt; else ShouldProcess asks.
    /// </summary>
    protected ChangeMode DecideChange(string target, string action, bool force = false)
    {
        if (WhatIfRequested())
        {
            ShouldProcess(target, action);
            return ChangeMode.WhatIf;
        }
        return force || ShouldProcess(target, action) ? ChangeMode.Apply : ChangeMode.Declined;
    }

    /// <summary>
    /// The start every change cmdlet shares: <see cref="DecideChange"/>, false when the operator declined
    /// (nothing to do), else <paramref name="dryRun"/> says whether to send the change or only describe it.
    /// </summary>
    protected bool TryDecideChange(string target, string action, out bool dryRun, bool force = false)
    {
        ChangeMode change = DecideChange(target, action, force);
        dryRun = change == ChangeMode.WhatIf;
        return change != ChangeMode.Declined;
    }

    /// <summary>-WhatIf was passed, or $WhatIfPreference is set.</summary>
    protected bool WhatIfRequested()
    {
        if (MyInvocation.BoundParameters.TryGetValue("WhatIf", out object? bound))
        {
            return bound is SwitchParameter { IsPresent: true } || bound is true;
        }
        return LanguagePrimitives.IsTrue(GetVariableValue("WhatIfPreference"));
    }

    /// <summary>Shows a dry run's details the way -WhatIf messages appear (redacted: a plan can carry a template's values).</summary>
    protected void WriteWhatIf(string text) => Host.UI.WriteLine("What if: " + Redactor.Default.Text(text));

    /// <summary>Verbose text, redacted. Hides Cmdlet.WriteVerbose, so every cmdlet's verbose text passes here.</summary>
    protected new void WriteVerbose(string? text) => base.WriteVerbose(Redactor.Default.Text(text));

    /// <summary>A warning, redacted.</summary>
    protected new void WriteWarning(string? text) => base.WriteWarning(Redactor.Default.Text(text));

    /// <summary>Debug text, redacted.</summary>
    protected new void WriteDebug(string? text) => base.WriteDebug(Redactor.Default.Text(text));

    /// <summary>Progress, its texts redacted (a status can name a URL).</summary>
    protected new void WriteProgress(ProgressRecord progress)
    {
        progress.Activity = Redactor.Default.Text(progress.Activity);
        progress.StatusDescription = Redactor.Default.Text(progress.StatusDescription);
        if (progress.CurrentOperation is not null) progress.CurrentOperation = Redactor.Default.Text(progress.CurrentOperation);
        base.WriteProgress(progress);
    }

    /// <summary>A reporter the engine can call from any thread for verbose text.</summary>
    protected Action<string> VerboseSink => message => OnPipelineThread(() => WriteVerbose(message));
}
