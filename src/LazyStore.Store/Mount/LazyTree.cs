using System.Text;
using LazyStore.Nix.Nar;
using LazyStore.Store.Catalog;

namespace LazyStore.Store.Mount;

/// <summary>
/// A lazy store path's tree held in memory for the mount: one catalog query per path instead of one per
/// lookup. Immutable; when the NAR arrives and its verified tree replaces the listing's, a new instance
/// takes this one's place (<see cref="Verdict"/> says which, and whether the two agreed).
/// </summary>
/// <remarks>
/// Memory is a few dozen bytes per entry whatever the tree's shape: columns instead of an object per
/// entry, names as UTF-8 in one buffer, each directory's children as a slice of one array (NAR order is
/// byte order of names, so a lookup is a binary search). Entries are materialised when asked for.
/// </remarks>
internal sealed class LazyTree
{
    private readonly TreeShape _shape;
    private volatile SupersededBy? _verdict;

    public LazyTree(LazyPath path, NarRecord nar, IEnumerable<NarIndexEntry> entries, int count)
        : this(path, nar, TreeShape.Build(entries, count, path))
    {
    }

    private LazyTree(LazyPath path, NarRecord nar, TreeShape shape)
    {
        Path = path;
        Nar = nar;
        _shape = shape;
    }

    public LazyPath Path { get; }

    public NarRecord Nar { get; }

    /// <summary>Whether the tree was read from the verified NAR (rather than from the cache's unsigned listing).</summary>
    public bool IsVerified => Nar.Tree == NarTree.Nar;

    /// <summary>Whether the verified blob is stored too, so that the tree's payload offsets allow reads.</summary>
    public bool IsFetched => IsVerified && Nar.IsFetched;

    public int Count => _shape.Count;

    public NarIndexEntry Root => Entry(0);

    /// <summary>For a listing's tree once the verified tree of its NAR is known: that tree (for this path) and whether they agree.</summary>
    public SupersededBy? Verdict => _verdict;

    public NarIndexEntry Entry(int id) => _shape.Entry(id);

    public NarIndexEntry? Lookup(int directory, string name) => _shape.Lookup(directory, name) is var id and >= 0 ? Entry(id) : null;

    /// <summary>A directory's entries in NAR order.</summary>
    public IReadOnlyList<NarIndexEntry> Children(int directory) => _shape.Children(directory);

    /// <summary>The names from the root down to <paramref name="id"/>.</summary>
    public IReadOnlyList<string> PathOf(int id)
    {
        var names = new List<string>();
        for (var entry = id; _shape.Parent(entry) is var parent and >= 0; entry = parent)
            names.Add(_shape.Name(entry));
        names.Reverse();
        return names;
    }

    public string Describe(int id)
    {
        var inside = PathOf(id);
        return inside.Count == 0 ? Path.Path.BaseName : Path.Path.BaseName + "/" + string.Join('/', inside);
    }

    /// <summary>The same tree for another store path with the same NAR; the entries are shared, not copied.</summary>
    public LazyTree For(LazyPath path) => path.Path.Equals(Path.Path) ? this : new LazyTree(path, Nar, _shape);

    /// <summary>
    /// Where this tree and <paramref name="other"/> first differ in what a program could see — names, types,
    /// sizes, executable bits, symlink targets — or null when they show the same tree. Payload offsets are
    /// not compared (a listing has none).
    /// </summary>
    public string? FirstDifference(LazyTree other)
    {
        for (int id = 0; id < Math.Max(Count, other.Count); id++)
        {
            if (id >= Count)
                return $"{other.Describe(id)} is not listed";
            if (id >= other.Count)
                return $"{Describe(id)} is listed but not in the NAR";
            var (mine, theirs) = (Entry(id), other.Entry(id));
            if (mine.Parent != theirs.Parent || mine.Name != theirs.Name)
                return _shape.Contains(other.PathOf(id)) ? $"{Describe(id)} is listed but not in the NAR" : $"{other.Describe(id)} is not listed";
            if (mine.Type != theirs.Type || mine.Size != theirs.Size || mine.IsExecutable != theirs.IsExecutable || mine.Target != theirs.Target)
                return $"{Describe(id)} is listed as {Show(mine)}, the NAR has {Show(theirs)}";
        }
        return null;
    }

    /// <summary>Records, once, the verified tree that replaces this listing's tree; the first verdict stays.</summary>
    public SupersededBy Supersede(LazyTree verified, bool agrees)
    {
        var verdict = new SupersededBy(verified.For(Path), agrees);
        return Interlocked.CompareExchange(ref _verdict, verdict, null) ?? verdict;
    }

    public static string Show(NarIndexEntry entry) => entry.Type switch
    {
        NarEntryType.Regular => $"{(entry.IsExecutable ? "an executable" : "a regular")} file of {entry.Size} bytes",
        NarEntryType.Symlink => $"a symlink to '{entry.Target}'",
        _ => "a directory",
    };

    /// <summary>What replaced a listing's tree: the verified tree of the same path, and whether the listing showed exactly that tree.</summary>
    public sealed record SupersededBy(LazyTree Tree, bool Agrees);

    /// <summary>The entries of one NAR's tree as columns, shared by every path with that NAR.</summary>
    private sealed class TreeShape
    {
        private const byte ExecutableBit = 0x80;

        private readonly int[] _parents;
        private readonly byte[] _kinds;
        private readonly long[] _sizes;
        private readonly long[]? _offsets;
        private readonly int[] _nameStarts;
        private readonly byte[] _names;
        private readonly Dictionary<int, string> _targets;
        private readonly int[] _childStarts;
        private readonly int[] _children;

        private TreeShape(int[] parents, byte[] kinds, long[] sizes, long[]? offsets, int[] nameStarts, byte[] names,
            Dictionary<int, string> targets, int[] childStarts, int[] children)
        {
            (_parents, _kinds, _sizes, _offsets, _nameStarts, _names, _targets, _childStarts, _children) =
                (parents, kinds, sizes, offsets, nameStarts, names, targets, childStarts, children);
        }

        public int Count => _parents.Length;

        public static TreeShape Build(IEnumerable<NarIndexEntry> entries, int count, LazyPath path)
        {
            if (count < 1)
                throw new InvalidDataException($"the index of {path.Path} has no root entry");
            var parents = new int[count];
            var kinds = new byte[count];
            var sizes = new long[count];
            long[]? offsets = null;
            var nameStarts = new int[count + 1];
            var names = new MemoryStream();
            var targets = new Dictionary<int, string>();
            var childCounts = new int[count + 1];
            int i = 0;
            foreach (var entry in entries)
            {
                if (i >= count || entry.Id != i)
                    throw new InvalidDataException($"the index of {path.Path} is not in NAR order at entry {i}");
                if (entry.Parent is { } parent && (parent < 0 || parent >= i || (NarEntryType)(kinds[parent] & ~ExecutableBit) != NarEntryType.Directory))
                    throw new InvalidDataException($"the index of {path.Path} gives entry {i} a parent that is not a directory before it");
                if ((entry.Parent is null) != (i == 0))
                    throw new InvalidDataException($"the index of {path.Path} has a root other than entry 0");
                parents[i] = entry.Parent ?? -1;
                kinds[i] = (byte)((byte)entry.Type | (entry.IsExecutable ? ExecutableBit : 0));
                sizes[i] = entry.Size;
                if (entry.PayloadOffset is { } offset)
                {
                    offsets ??= new long[count];
                    offsets[i] = offset;
                }
                nameStarts[i] = checked((int)names.Length);
                var utf8 = Encoding.UTF8.GetBytes(entry.Name);
                names.Write(utf8);
                if (entry.Target is { } target)
                    targets[i] = target;
                if (entry.Parent is { } p)
                    childCounts[p + 1]++;
                i++;
            }
            if (i != count)
                throw new InvalidDataException($"the index of {path.Path} has {i} entries, not the {count} counted");
            nameStarts[count] = checked((int)names.Length);
            // Children of each directory as a slice of one array, in NAR order (ids ascend within a directory).
            var childStarts = new int[count + 1];
            for (int d = 0; d < count; d++)
                childStarts[d + 1] = childStarts[d] + childCounts[d + 1];
            var children = new int[Math.Max(0, count - 1)];
            var filled = new int[count];
            for (int id = 1; id < count; id++)
            {
                var parent = parents[id];
                children[childStarts[parent] + filled[parent]++] = id;
            }
            targets.TrimExcess();
            return new TreeShape(parents, kinds, sizes, offsets, nameStarts, names.ToArray(), targets, childStarts, children);
        }

        public int Parent(int id) => _parents[id];

        public NarEntryType Type(int id) => (NarEntryType)(_kinds[id] & ~ExecutableBit);

        public string Name(int id) => Encoding.UTF8.GetString(NameBytes(id));

        private ReadOnlySpan<byte> NameBytes(int id) => _names.AsSpan(_nameStarts[id], _nameStarts[id + 1] - _nameStarts[id]);

        public NarIndexEntry Entry(int id) => new(
            id,
            _parents[id] is var parent and >= 0 ? parent : null,
            id == 0 ? "" : Name(id),
            Type(id),
            (_kinds[id] & ExecutableBit) != 0,
            _sizes[id],
            _offsets?[id],
            _targets.GetValueOrDefault(id));

        /// <summary>The id of <paramref name="name"/> in directory <paramref name="directory"/>, or -1.</summary>
        public int Lookup(int directory, string name)
        {
            var length = Encoding.UTF8.GetMaxByteCount(name.Length);
            Span<byte> utf8 = length <= 1024 ? stackalloc byte[length] : new byte[length];
            utf8 = utf8[..Encoding.UTF8.GetBytes(name, utf8)];
            int low = _childStarts[directory], high = _childStarts[directory + 1] - 1;
            while (low <= high)
            {
                var middle = low + ((high - low) >> 1);
                var order = NarGrammar.CompareNames(NameBytes(_children[middle]), utf8);
                if (order == 0)
                    return _children[middle];
                if (order < 0)
                    low = middle + 1;
                else
                    high = middle - 1;
            }
            return -1;
        }

        /// <summary>Whether <paramref name="names"/> lead from the root to an entry of this tree.</summary>
        public bool Contains(IReadOnlyList<string> names)
        {
            var id = 0;
            foreach (var name in names)
            {
                var child = Type(id) == NarEntryType.Directory ? Lookup(id, name) : -1;
                if (child < 0)
                    return false;
                id = child;
            }
            return true;
        }

        public IReadOnlyList<NarIndexEntry> Children(int directory) => new ChildList(this, _childStarts[directory], _childStarts[directory + 1]);

        private sealed class ChildList(TreeShape shape, int start, int end) : IReadOnlyList<NarIndexEntry>
        {
            public NarIndexEntry this[int index] =>
                (uint)index < (uint)Count ? shape.Entry(shape._children[start + index]) : throw new ArgumentOutOfRangeException(nameof(index));

            public int Count => end - start;

            public IEnumerator<NarIndexEntry> GetEnumerator()
            {
                for (int i = start; i < end; i++)
                    yield return shape.Entry(shape._children[i]);
            }

            System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
        }
    }
}
