from kws.commands import main

raise SystemExit(main())
