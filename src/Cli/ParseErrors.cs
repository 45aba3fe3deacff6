using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;
using VitSparse.Runtime.Text;

namespace VitSparse.Cli;

/// <summary>
/// A command line that does not parse, as one line naming the option (with "did you mean" when a known name
/// is close) instead of System.CommandLine's messages followed by the whole help page.
/// </summary>
static partial class ParseErrors
{
    /// <summary>The first problem of the parse as one line, or null when it parsed (or help was asked for).</summary>
    public static string? Describe(ParseResult result)
    {
        if (result.Tokens.Any(t => t.Value is "-h" or "--help" or "-?")) return null;
        var command = result.CommandResult.Command;
        string where = command is RootCommand ? "vitsparse" : $"vitsparse {command.Name}";
        // An option that takes several values (infer --input a.jpg b.jpg) swallows a misspelt option after it.
        var swallowed = result.Tokens.FirstOrDefault(t => t.Type == TokenType.Argument && t.Value.StartsWith("--", StringComparison.Ordinal) && !File.Exists(t.Value));
        if (result.Errors.Count == 0 && swallowed == null) return null;
        if (result.UnmatchedTokens.Count > 0 || swallowed != null)
        {
            string token = swallowed?.Value ?? result.UnmatchedTokens[0];
            if (token.StartsWith('-'))
            {
                var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith('-'));
                return $"{token}: unknown option of '{where}'{DidYouMean.Hint(token, names)}; see '{where} --help'";
            }
            if (command is RootCommand)
                return $"'{token}' is not a command{DidYouMean.Hint(token, command.Subcommands.Select(c => c.Name))}; commands: {string.Join(", ", command.Subcommands.Select(c => c.Name))}";
            return $"'{token}': unexpected argument of '{where}'; see '{where} --help'";
        }
        string message = result.Errors[0].Message;
        if (MissingValue().Match(message) is { Success: true } m1) return $"{m1.Groups[1].Value}: needs a value";
        if (Required().Match(message) is { Success: true } m2) return $"{m2.Groups[1].Value}: is required; see '{where} --help'";
        if (RequiredArgument().Match(message) is { Success: true } m4) return $"{m4.Groups[1].Value}: is required; see '{where} --help'";
        if (CannotParse().Match(message) is { Success: true } m3)
            return $"{m3.Groups[2].Value}: '{m3.Groups[1].Value}' is not {TypeName(m3.Groups[3].Value)}";
        if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
            return $"give a command: {string.Join(", ", command.Subcommands.Select(c => c.Name))}; see 'vitsparse --help'";
        return message.ReplaceLineEndings(" ");
    }

    static string TypeName(string clr) => clr switch
    {
        "System.Int32" or "System.Int64" => "a whole number",
        "System.Double" or "System.Single" => "a number",
        "System.Boolean" => "true or false",
        _ => $"a {clr}",
    };

    [GeneratedRegex(@"^Required argument missing for (?:option|command): '([^']+)'")] private static partial Regex MissingValue();
    [GeneratedRegex(@"^(?:Option|Argument) '([^']+)' is required")] private static partial Regex Required();
    [GeneratedRegex(@"^Required argument '([^']+)' missing for command")] private static partial Regex RequiredArgument();
    [GeneratedRegex(@"^Cannot parse argument '([^']*)' for (?:option|argument) '([^']+)' as expected type '([^']+)'")] private static partial Regex CannotParse();
}
