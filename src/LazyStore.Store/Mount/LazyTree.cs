using LazyStore.Nix;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Mount;

/// <summary>
/// A lazy store path's tree held in memory for the mount: one catalog query per path instead of one per
/// lookup. Immutable; when the NAR arrives and its verified tree replaces the listing's, a new instance
/// takes this one's place.
/// </summary>
internal sealed class LazyTree
{
    private readonly NarIndexEntry[] _entries;
    private readonly Dictionary<int, List<NarIndexEntry>> _children = [];
    private readonly Dictionary<(int Parent, string Name), NarIndexEntry> _byName = [];

    public LazyTree(LazyPath path, NarRecord nar, IReadOnlyList<NarIndexEntry> entries)
    {
        Path = path;
        Nar = nar;
        _entries = [.. entries];
        for (int i = 0; i < _entries.Length; i++)
        {
            var entry = _entries[i];
            if (entry.Id != i)
                throw new InvalidDataException($"the index of {path.Path} is not in NAR order at entry {i}");
            if (entry.Parent is { } parent)
            {
                if (!_children.TryGetValue(parent, out var siblings))
                    _children[parent] = siblings = [];
                siblings.Add(entry);
                _byName[(parent, entry.Name)] = entry;
            }
        }
    }

    public LazyPath Path { get; }

    public NarRecord Nar { get; }

    /// <summary>Whether the tree came from the verified NAR, whose payload offsets allow reads.</summary>
    public bool IsFetched => Nar.Tree == NarTree.Nar && Nar.IsFetched;

    public NarIndexEntry Root => _entries[0];

    public NarIndexEntry Entry(int id) => _entries[id];

    public NarIndexEntry? Lookup(int directory, string name) => _byName.GetValueOrDefault((directory, name));

    /// <summary>A directory's entries in NAR order.</summary>
    public IReadOnlyList<NarIndexEntry> Children(int directory) =>
        _children.TryGetValue(directory, out var children) ? children : [];

    /// <summary>The names from the root down to <paramref name="id"/>.</summary>
    public IReadOnlyList<string> PathOf(int id)
    {
        var names = new List<string>();
        for (var entry = _entries[id]; entry.Parent is { } parent; entry = _entries[parent])
            names.Add(entry.Name);
        names.Reverse();
        return names;
    }

    /// <summary>The entry at <paramref name="names"/>, without following symlinks; null when there is none.</summary>
    public NarIndexEntry? Resolve(IReadOnlyList<string> names)
    {
        var entry = Root;
        foreach (var name in names)
        {
            if (entry.Type != NarEntryType.Directory || Lookup(entry.Id, name) is not { } child)
                return null;
            entry = child;
        }
        return entry;
    }

    public string Describe(int id)
    {
        var inside = PathOf(id);
        return inside.Count == 0 ? Path.Path.BaseName : Path.Path.BaseName + "/" + string.Join('/', inside);
    }
}
