from trackd.cli import main

raise SystemExit(main())
