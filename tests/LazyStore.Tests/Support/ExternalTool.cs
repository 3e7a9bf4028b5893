using System.Diagnostics;

namespace LazyStore.Tests.Support;

public sealed record ProcessResult(int ExitCode, byte[] Stdout, string Stderr)
{
    public string StdoutText => System.Text.Encoding.UTF8.GetString(Stdout);

    public ProcessResult EnsureSuccess(string what)
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"{what} exited with {ExitCode}: {Stderr.Trim()}");
        return this;
    }
}

/// <summary>Finds and runs external programs, capturing stdout as bytes.</summary>
public static class ExternalTool
{
    public static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    public static ProcessResult Run(string tool, IEnumerable<string> args, IDictionary<string, string?>? env = null, Stream? stdin = null, string? stdoutFile = null)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        if (env is not null)
        {
            foreach (var (k, v) in env)
                psi.Environment[k] = v;
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {tool}");
        var stderrTask = p.StandardError.ReadToEndAsync();
        Task stdinTask = Task.CompletedTask;
        if (stdin is not null)
        {
            stdinTask = Task.Run(async () =>
            {
                await stdin.CopyToAsync(p.StandardInput.BaseStream);
                p.StandardInput.Close();
            });
        }
        byte[] stdout;
        if (stdoutFile is not null)
        {
            using (var f = File.Create(stdoutFile))
                p.StandardOutput.BaseStream.CopyTo(f);
            stdout = [];
        }
        else
        {
            using var ms = new MemoryStream();
            p.StandardOutput.BaseStream.CopyTo(ms);
            stdout = ms.ToArray();
        }
        p.WaitForExit();
        stdinTask.GetAwaiter().GetResult();
        return new ProcessResult(p.ExitCode, stdout, stderrTask.GetAwaiter().GetResult());
    }
}
