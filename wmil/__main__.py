from wmil.cli import main

raise SystemExit(main())
