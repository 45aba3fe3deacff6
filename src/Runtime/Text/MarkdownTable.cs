using System.Text;

namespace VitSparse.Runtime.Text;

/// <summary>A pipe table that a user can paste into an issue or README, columns padded for the terminal.</summary>
public sealed class MarkdownTable(params string[] headers)
{
    readonly List<string[]> _rows = [];
    readonly bool[] _right = new bool[headers.Length];

    /// <summary>Right-aligns the given columns (numbers).</summary>
    public MarkdownTable RightAlign(params int[] columns)
    {
        foreach (int c in columns) _right[c] = true;
        return this;
    }

    /// <summary>Adds a row, one cell per column.</summary>
    public MarkdownTable Add(params object[] cells)
    {
        if (cells.Length != headers.Length) throw new ArgumentException($"row has {cells.Length} cells, table has {headers.Length} columns");
        _rows.Add(cells.Select(c => c?.ToString() ?? "").ToArray());
        return this;
    }

    /// <summary>The table as markdown, columns padded to equal width.</summary>
    public override string ToString()
    {
        var widths = headers.Select((h, i) => Math.Max(3, _rows.Select(r => r[i].Length).Append(h.Length).Max())).ToArray();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells)
        {
            sb.Append('|');
            for (int i = 0; i < cells.Count; i++)
                sb.Append(' ').Append(_right[i] ? cells[i].PadLeft(widths[i]) : cells[i].PadRight(widths[i])).Append(" |");
            sb.AppendLine();
        }
        Line(headers);
        sb.Append('|');
        for (int i = 0; i < widths.Length; i++)
            sb.Append(' ').Append(_right[i] ? new string('-', widths[i] - 1) + ":" : new string('-', widths[i])).Append(" |");
        sb.AppendLine();
        foreach (var r in _rows) Line(r);
        return sb.ToString();
    }
}
