namespace LazyStore.Nix; internal static class Placeholder { }
