namespace KfmRollback.Engine; public static class EngineInfo { public const string Name = "KfmRollback.Engine"; }
