"""Regenerate corpus/fables.txt, corpus/recipes.txt and corpus/verses.txt (seeded, deterministic).

Hand-written sentence templates, combined so that a tiny model meets strong, regular structure.
Run from the repository root: `python tools/make_corpora.py`.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "corpus"

# ---------------------------------------------------------------- fables
ANIMALS = [
    ("Fox", "clever", "a den under the old oak"), ("Hare", "quick", "a hollow in the long grass"),
    ("Tortoise", "slow", "a shady bank by the pond"), ("Crow", "proud", "a tall pine at the edge of the wood"),
    ("Mouse", "small", "a hole behind the mill"), ("Bear", "strong", "a cave on the hillside"),
    ("Goat", "stubborn", "a rocky ledge above the valley"), ("Owl", "wise", "a hollow in the chestnut tree"),
    ("Frog", "noisy", "a lily pad in the reeds"), ("Badger", "gruff", "a sett beneath the hedge"),
    ("Sparrow", "cheerful", "a nest in the barn roof"), ("Wolf", "hungry", "a cold hollow in the hills"),
    ("Lamb", "gentle", "the green meadow"), ("Squirrel", "busy", "a drey in the beech tree"),
    ("Heron", "patient", "the shallows of the river"), ("Cat", "vain", "a warm corner of the farmhouse"),
    ("Dog", "loyal", "a kennel by the gate"), ("Duck", "chatty", "the village pond"),
    ("Mole", "shy", "a tunnel under the orchard"), ("Rooster", "loud", "the top of the henhouse"),
    ("Beaver", "tireless", "a lodge on the stream"), ("Snail", "careful", "the cool stones of the garden wall"),
    ("Magpie", "greedy", "a tangle of twigs in the elm"), ("Ant", "hardworking", "a hill by the footpath"),
    ("Goose", "bossy", "the farmyard"), ("Deer", "timid", "a thicket in the forest"),
    ("Raven", "curious", "the old church tower"), ("Pig", "lazy", "a muddy sty behind the barn"),
    ("Hedgehog", "prickly", "a pile of leaves under the hedge"), ("Otter", "playful", "a burrow on the riverbank"),
]
# (name, description, tags): carry = can be lifted or taken, food = can be eaten, break = can break,
# place = somewhere to stay away from. Plots pick only objects that make sense for them.
OBJECTS = [
    ("Kettle", "a copper kettle that had rolled off a cart", "carry break"),
    ("Lantern", "an old lantern hanging from a post", "carry break"),
    ("Basket", "a wicker basket full of ripe plums", "carry food"),
    ("Bell", "a little brass bell lost by a shepherd", "carry break"),
    ("Ladder", "a wooden ladder leaning against the wall", "carry break place"),
    ("Boat", "a small boat tied to a willow", "place"),
    ("Mirror", "a round mirror lying in the grass", "carry break"),
    ("Drum", "a painted drum left behind after the fair", "carry break"),
    ("Honey Pot", "a clay pot of golden honey", "carry food break"),
    ("Bridge", "a narrow bridge of planks over the stream", "place"),
    ("Cheese", "a fat wheel of cheese that had fallen from a wagon", "carry food"),
    ("Well", "a deep stone well", "place"),
    ("Scarecrow", "a scarecrow in a torn red coat", "place"),
    ("Kite", "a paper kite caught in a bush", "carry break"),
    ("Key", "a silver key shining in the mud", "carry"),
    ("Candle", "a tall white candle on a windowsill", "carry break"),
    ("Wheelbarrow", "a wheelbarrow piled with turnips", "carry food"),
    ("Feather", "a long blue feather", "carry"),
    ("Acorn", "the biggest acorn anyone had ever seen", "carry food"),
    ("Blanket", "a thick wool blanket left on a fence", "carry"),
    ("Clock", "a clock that ticked in the village square", "break place"),
    ("Pebble", "a smooth white pebble", "carry"),
    ("Apple Tree", "an apple tree heavy with fruit", "food place"),
    ("Gate", "a creaking farm gate", "break place"),
    ("Loaf", "a warm brown loaf cooling on a sill", "carry food"),
    ("Umbrella", "a black umbrella blown into a field", "carry break"),
    ("Pumpkin", "a huge orange pumpkin in the field", "carry food"),
    ("Beehive", "a humming beehive in the hedge", "food place"),
]
SEASONS = ["one bright spring morning", "on a hot summer afternoon", "late one autumn evening",
           "on a cold winter day", "one misty morning", "after a long week of rain", "on the first day of harvest",
           "one windy afternoon", "on a still, starry night", "early one frosty morning"]

INTROS = [
    "There once was a {trait} {name} who lived in {home}.",
    "In {home} lived a {name} who was known far and wide for being {trait}.",
    "Everyone in the wood knew the {name}, who lived in {home}.",
    "Long ago, when the hedges were taller than they are now, a {trait} {name} made its home in {home}.",
]
PLOTS = {}  # name -> (story function, object tag it needs)


def plot(tag):
    def register(fn):
        PLOTS[fn.__name__] = (fn, tag)
        return fn
    return register


@plot('carry')
def pride(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} found {obj[1]}. \"Look at me,\" said the {a[0]}. \"No one in the whole "
        f"wood could carry this but me.\"",
        f"The {b[0]}, who was {b[1]} and said little, watched from {b[2]}. The {a[0]} lifted the {obj[0].lower()} "
        f"high to show it off, and {r.choice(['it slipped and fell into the stream', 'it tipped over and rolled down the hill', 'its own legs wobbled and it tumbled into the mud'])}.",
        f"The {b[0]} helped the {a[0]} up without a word, and the {a[0]} felt {r.choice(['very foolish', 'ashamed', 'small indeed'])}.",
    ], r.choice(["Pride goes before a fall.", "Those who boast the loudest often stumble first.",
                 "Let your deeds speak, not your mouth."])


@plot('food')
def greed(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[1]} {a[0]} came upon {obj[1]}. The {b[0]} came by and asked for a share.",
        f"\"Find your own,\" said the {a[0]}, and began to take everything for itself. It took so much that "
        f"{r.choice(['it could not walk home', 'its paws were too full to hold on', 'its pockets tore and spilled it all'])}.",
        f"In the end the {a[0]} had nothing at all, while the {b[0]} went home {r.choice(['with a full belly', 'singing', 'content with a little'])}.",
    ], r.choice(["Grasp at everything and you may keep nothing.", "Greed loses what sharing would have kept.",
                 "A little shared is better than a lot lost."])


@plot('carry')
def patience(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} and the {b[0]} both wanted {obj[1]}. But the {obj[0].lower()} was stuck "
        f"fast in the {r.choice(['mud', 'ice', 'brambles', 'roots'])}. The {a[0]} was in a hurry. It "
        f"{r.choice(['pushed', 'pulled', 'tugged', 'kicked'])} and {r.choice(['shouted', 'grumbled', 'stamped'])}, but nothing worked.",
        f"The {b[0]} sat down and waited. When the {r.choice(['wind dropped', 'sun came out', 'river went down', 'farmer went home'])}, "
        f"the {b[0]} simply walked over and took the {obj[0].lower()} with no trouble at all.",
        f"\"How did you do that?\" asked the {a[0]}. \"I waited,\" said the {b[0]}.",
    ], r.choice(["Patience does what haste cannot.", "Slow and steady gets the job done.",
                 "Wait for the right moment, and the work is easy."])


@plot('')
def kindness(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} heard a cry. The {b[0]} had caught its foot in a bramble beside "
        f"{obj[1]} and could not get free.",
        f"The {a[0]} was {a[1]}, but it stopped and helped. Together they worked until the {b[0]} was free. "
        f"\"I will not forget this,\" said the {b[0]}.",
        f"Weeks later the {a[0]} was lost in the {r.choice(['snow', 'fog', 'dark', 'storm'])}, and it was the {b[0]} "
        f"who came to find it and led it home to {a[2]}.",
    ], r.choice(["A kindness given is a kindness returned.", "Help others, and help will find you.",
                 "No act of kindness is ever wasted."])


@plot('break')
def honesty(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} was playing near {obj[1]} and broke it by accident.",
        f"When the {b[0]} asked what had happened, the {a[0]} {r.choice(['looked at its feet', 'wanted to run away', 'thought of telling a lie'])}. "
        f"But it said, \"I broke it. I am sorry.\"",
        f"The {b[0]} was {r.choice(['surprised', 'quiet for a moment', 'not angry at all'])}. \"Then we will mend it together,\" "
        f"it said, and from that day the {b[0]} trusted the {a[0]} in everything.",
    ], r.choice(["Honesty is the best policy.", "The truth, told early, mends more than it breaks.",
                 "Trust is built by telling the truth when it is hard."])


@plot('')
def preparation(r, a, b, obj, when):
    return [
        f"All summer the {a[0]} worked, carrying food to {a[2]}. The {b[0]} laughed at it and sat by "
        f"{obj[1]}, {r.choice(['singing', 'sleeping in the sun', 'telling stories', 'playing games'])}.",
        f"\"Why work on such a fine day?\" asked the {b[0]}. \"Because winter is coming,\" said the {a[0]}.",
        f"When the snow fell, the {b[0]} was cold and hungry, and it knocked at the door of the {a[0]}. "
        f"The {a[0]} let it in, and the {b[0]} {r.choice(['promised to work next summer', 'was never idle again', 'learned its lesson'])}.",
    ], r.choice(["Prepare today for the needs of tomorrow.", "Work while the sun shines.",
                 "The one who plans ahead does not go hungry."])


@plot('place')
def listening(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {b[0]} warned the {a[0]}, \"Do not go near {obj[1]}. It is not safe.\"",
        f"But the {a[0]} was {r.choice(['stubborn', 'in a hurry', 'sure it knew best', 'too proud to be told'])} and would not listen. It went straight to the {obj[0].lower()} and "
        f"{r.choice(['got its tail caught', 'fell right in', 'was stuck there until dark', 'lost its way home'])}.",
        f"At last the {b[0]} came and helped it out. \"Next time,\" said the {a[0]}, \"I will listen.\"",
    ], r.choice(["Listen to good advice, even when you do not like it.", "A warning heard is a danger avoided.",
                 "The wise listen; the foolish learn the hard way."])


@plot('')
def envy(r, a, b, obj, when):
    return [
        f"The {a[0]} envied the {b[0]}. \"If only I were {b[1]} like you,\" it sighed, sitting by {obj[1]}.",
        f"So the {a[0]} tried to live like the {b[0]}. It moved to {b[2]}, but it was {r.choice(['cold', 'too high', 'too wet', 'too noisy'])} "
        f"there, and it could not sleep.",
        f"{when.capitalize()}, the {a[0]} went back to {a[2]} and found it just right. \"I am {a[1]},\" it said, \"and that is good enough.\"",
    ], r.choice(["Be glad of what you are.", "Envy makes a good home feel poor.",
                 "Every creature has its own gifts."])


@plot('carry')
def teamwork(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} tried to move {obj[1]}, but it was far too heavy. The {b[0]} tried alone "
        f"and could not move it either.",
        f"\"Let us try together,\" said the {b[0]}. The {a[0]} pushed and the {b[0]} pulled, and the "
        f"{obj[0].lower()} moved {r.choice(['at once', 'little by little', 'as if it were light as a leaf'])}.",
        f"They {r.choice(['shared what they found', 'laughed all the way home', 'became good friends'])}, and after that they always worked side by side.",
    ], r.choice(["Many hands make light work.", "Together we can do what none can do alone.",
                 "Friends who work together go further."])


@plot('carry')
def trickery(r, a, b, obj, when):
    return [
        f"{when.capitalize()}, the {a[0]} wanted {obj[1]} that belonged to the {b[0]}. \"Close your eyes,\" it said, "
        f"\"and I will show you a wonderful trick.\"",
        f"But the {b[0]} was not so easily fooled. It kept one eye open and saw the {a[0]} reach for the "
        f"{obj[0].lower()}.",
        f"\"The trick,\" said the {b[0]}, \"is that I am still watching.\" The {a[0]} {r.choice(['slunk away', 'went red to the ears', 'ran off into the bushes'])}.",
    ], r.choice(["A trickster is often tricked.", "Keep your eyes open when flattery is near.",
                 "Do not trust a sweet voice asking you to look away."])


def make_fables(r: random.Random) -> str:
    stories, seen = [], set()
    plot_names = sorted(PLOTS)
    while len(stories) < 105:
        a, b = r.sample(ANIMALS, 2)
        name = r.choice(plot_names)
        story, tag = PLOTS[name]
        obj = r.choice([o for o in OBJECTS if tag in o[2].split()] if tag else OBJECTS)
        second = obj[0] if r.random() < 0.6 else b[0]
        title = f"The {a[0]} and the {second}"
        if title in seen:
            continue
        seen.add(title)
        paragraphs, moral = story(r, a, b, obj, r.choice(SEASONS))
        if r.random() < 0.5:
            paragraphs = [r.choice(INTROS).format(name=a[0], trait=a[1], home=a[2])] + paragraphs
        stories.append(f"{title}\n\n" + "\n".join(paragraphs) + f"\n\nMoral: {moral}\n")
    return "# fables: short animal fables written for tinylm, each with a moral\n" + "\n\n".join(stories)


# ---------------------------------------------------------------- recipes
# (name in a title, name in a step, amount in the ingredients list)
VEGETABLES = [
    ("Carrot", "carrots", "3 carrots"), ("Leek", "leeks", "2 leeks"), ("Potato", "potatoes", "4 potatoes"),
    ("Parsnip", "parsnips", "3 parsnips"), ("Pumpkin", "pumpkin", "half a small pumpkin"),
    ("Tomato", "tomatoes", "5 ripe tomatoes"), ("Pea", "peas", "2 cups of peas"),
    ("Mushroom", "mushrooms", "a dozen mushrooms"), ("Spinach", "spinach", "two large handfuls of spinach"),
    ("Cabbage", "cabbage", "half a cabbage"), ("Beetroot", "beetroots", "3 beetroots"),
    ("Celery", "celery", "3 sticks of celery"), ("Sweet Potato", "sweet potatoes", "2 sweet potatoes"),
    ("Courgette", "courgettes", "2 courgettes"), ("Cauliflower", "cauliflower", "1 small cauliflower"),
    ("Red Pepper", "peppers", "2 red peppers"), ("Squash", "squash", "1 butternut squash"),
    ("Sweetcorn", "sweetcorn", "1 cup of sweetcorn"), ("Turnip", "turnips", "3 small turnips"),
]
FRUITS = [
    ("Apple", "apples", "4 apples"), ("Pear", "pears", "4 pears"), ("Plum", "plums", "8 plums"),
    ("Blackberry", "blackberries", "2 cups of blackberries"), ("Cherry", "cherries", "2 cups of cherries"),
    ("Raspberry", "raspberries", "1 cup of raspberries"), ("Apricot", "apricots", "6 apricots"),
    ("Rhubarb", "rhubarb", "4 stalks of rhubarb"), ("Peach", "peaches", "3 peaches"),
    ("Gooseberry", "gooseberries", "2 cups of gooseberries"), ("Fig", "figs", "6 figs"),
    ("Blueberry", "blueberries", "1 cup of blueberries"),
]
HERBS = ["thyme", "parsley", "rosemary", "mint", "basil", "sage", "dill", "chives", "coriander", "oregano"]
SPICES = ["cumin", "paprika", "black pepper", "ginger", "nutmeg", "turmeric", "chilli flakes", "coriander seed"]
SIDES = ["crusty bread", "rice", "a spoon of yoghurt", "mashed potatoes", "warm flatbread", "a green salad"]


def soup(r):
    (t1, p1, a1), (t2, p2, a2) = r.sample(VEGETABLES, 2)
    herb, spice = r.choice(HERBS), r.choice(SPICES)
    ing = [f"{a1}, chopped", f"{a2}, chopped", "1 onion, sliced", f"{r.choice(['1', '2'])} tablespoons butter",
           f"{r.choice(['4', '5', '6'])} cups vegetable stock", f"1 teaspoon {spice}", f"a handful of fresh {herb}",
           "salt to taste"]
    steps = [r.choice(["Melt the butter in a large pot over a medium heat.", "Warm the butter in a deep pan until it foams.", "Put a big pot on a gentle heat and melt the butter in it."]),
             f"Add the onion and cook gently until soft, about {r.choice(['five', 'eight', 'ten'])} minutes.",
             f"Stir in the {p1}, the {p2} and the {spice}, and cook for two minutes more.",
             f"Pour in the stock and bring it to the boil, then lower the heat and simmer for "
             f"{r.choice(['twenty', 'twenty five', 'thirty'])} minutes.",
             r.choice(["Blend until smooth, or leave it chunky if you prefer.",
                       "Mash it roughly with a potato masher for a thick, rustic soup.",
                       "Blend half of it and stir it back in, so it is creamy but still has body."]),
             f"Season with salt, scatter the {herb} on top and serve with {r.choice(SIDES[:1] + SIDES[4:5])}."]
    return f"{t1} and {t2} Soup", r.choice(["4", "6"]), r.choice(["40 minutes", "45 minutes", "1 hour"]), ing, steps


def salad(r):
    (tv, pv, av), (tf, pf, af) = r.choice(VEGETABLES), r.choice(FRUITS)
    herb, grain = r.choice(HERBS), r.choice(["Rice", "Barley", "Couscous", "Pasta", "Lentil", "Bulgur"])
    g = grain.lower() + ("s" if grain == "Lentil" else "")
    ing = [f"1 cup {g}", f"{av}, diced", f"{af}, sliced", f"a small bunch of {herb}",
           "3 tablespoons olive oil", f"1 tablespoon {r.choice(['lemon juice', 'cider vinegar', 'red wine vinegar'])}",
           "salt and black pepper"]
    steps = [f"Cook the {g} in salted water until tender, then drain and let it cool.",
             f"Roast the {pv} in a hot oven for {r.choice(['fifteen', 'twenty', 'twenty five'])} minutes, "
             "until golden at the edges.",
             "Whisk the oil and the sharp part of the dressing together with a pinch of salt.",
             f"Toss the {g}, the {pv} and the {pf} with the dressing.",
             f"Chop the {herb} and fold it through just before serving."]
    return f"{grain} Salad with {tv} and {tf}", "4", r.choice(["30 minutes", "35 minutes"]), ing, steps


def bread(r):
    flavour, extra, noun = r.choice([
        ("Rosemary", "2 tablespoons chopped rosemary", "rosemary"), ("Thyme", "1 tablespoon thyme leaves", "thyme"),
        ("Cheese", "a cup of grated cheese", "cheese"), ("Walnut", "a cup of chopped walnuts", "walnuts"),
        ("Honey", "3 tablespoons honey", "honey"), ("Olive", "a cup of olives, halved", "olives"),
        ("Seeded", "half a cup of mixed seeds", "seeds"), ("Onion", "1 onion, fried soft", "onion"),
        ("Oat", "half a cup of oats", "oats"), ("Sage", "a handful of sage, chopped", "sage"),
        ("Raisin", "a cup of raisins", "raisins"), ("Garlic", "4 cloves of garlic, crushed", "garlic"),
    ])
    ing = ["4 cups flour", "1 teaspoon salt", "2 teaspoons dried yeast", "1 and a half cups warm water",
           "2 tablespoons olive oil", extra]
    steps = [r.choice(["Mix the flour, salt and yeast in a large bowl.", "Stir the yeast and salt into the flour.", "Put the flour in a wide bowl and add the yeast on one side and the salt on the other."]),
             r.choice(["Add the warm water and the oil, and stir until a rough dough forms.", "Pour in the water and oil and mix with your hand until it comes together.", "Make a well in the middle, pour in the water and oil, and bring it together with a spoon."]),
             f"Knead for {r.choice(['ten', 'eight', 'twelve'])} minutes on a floured table until smooth.",
             f"Work in the {noun}, "
             "then cover the bowl and leave it somewhere warm for an hour.",
             f"Shape the dough into a {r.choice(['round loaf', 'long loaf', 'ring', 'dozen small rolls'])} "
             "and let it rise for another half hour.",
             f"Bake at {r.choice(['200', '210', '220'])} degrees for {r.choice(['thirty', 'thirty five', 'forty'])} "
             "minutes, until it sounds hollow when tapped underneath."]
    return f"{flavour} Bread", "one loaf", r.choice(["2 hours", "2 and a half hours"]), ing, steps


def stew(r):
    (t1, p1, a1), (t2, p2, a2) = r.sample(VEGETABLES, 2)
    herb, spice = r.choice(HERBS), r.choice(SPICES)
    base = r.choice(["Bean", "Lentil", "Chickpea", "Barley"])
    b = "barley" if base == "Barley" else base.lower() + "s"
    ing = [f"1 cup dried {b}" + (", soaked overnight" if base in ("Bean", "Chickpea") else ""),
           f"{a1}, cut into chunks", f"{a2}, chopped", "2 cloves garlic", f"1 teaspoon {spice}",
           f"2 sprigs {herb}", "1 tin chopped tomatoes", "3 cups water", "2 tablespoons oil"]
    steps = [r.choice(["Warm the oil in a heavy pot and fry the garlic for a minute.", "Heat the oil in a big pan and soften the garlic in it.", "Fry the garlic gently in the oil until it smells sweet."]),
             f"Add the {p1}, the {p2} and the {spice}, and stir well.",
             f"Tip in the {b}, the tomatoes, the water and the {herb}.",
             f"Cover and simmer for {r.choice(['forty', 'fifty', 'sixty'])} minutes, stirring now and then.",
             r.choice(["Take out the herb stalks, taste, and add salt if it needs it.", "Taste it and season with salt and pepper.", "Check the seasoning and add a splash of water if it is too thick."]),
             f"Serve in deep bowls with {r.choice(SIDES)}."]
    return f"{base} Stew with {t1}", r.choice(["4", "6"]), r.choice(["1 hour", "1 hour 15 minutes"]), ing, steps


def pie(r):
    (t1, p1, a1), (t2, p2, a2) = r.sample(FRUITS, 2)
    spice = r.choice(["cinnamon", "nutmeg", "ginger", "vanilla"])
    ing = ["2 cups flour", "1 cup cold butter, cubed", "4 tablespoons cold water", a1, a2,
           "half a cup of sugar", f"1 teaspoon {spice}", "1 egg, beaten"]
    steps = [r.choice(["Rub the butter into the flour with your fingertips until it looks like breadcrumbs.", "Work the butter into the flour quickly, so it stays cold.", "Cut the butter into the flour with two knives until it is crumbly."]),
             "Add the water a spoon at a time and bring it together into a dough. Chill for thirty minutes.",
             f"Mix the {p1} and the {p2} with the sugar and the {spice}.",
             r.choice(["Roll out half the pastry, line a pie dish, and fill it with the fruit.", "Line a buttered dish with half the pastry and pile the fruit in.", "Press half the pastry into a pie dish and spoon in the fruit."]),
             "Cover with the rest of the pastry, press the edges, and brush the top with egg.",
             f"Bake at 190 degrees for {r.choice(['forty', 'forty five'])} minutes, until golden and bubbling."]
    return f"{t1} and {t2} Pie", r.choice(["6", "8"]), "1 hour 30 minutes", ing, steps


def porridge(r):
    tf, pf, af = r.choice(FRUITS)
    spice = r.choice(["cinnamon", "nutmeg", "ginger", "cardamom"])
    grain = r.choice(["Oat", "Rice", "Barley", "Millet"])
    g = "oats" if grain == "Oat" else grain.lower()
    ing = [f"1 cup {g}", "2 cups milk", "1 cup water", f"a few {pf}" if pf.endswith("s") else f"a little {pf}",
           f"a pinch of {spice}", r.choice(["1 tablespoon honey", "2 teaspoons brown sugar", "a spoon of maple syrup"])]
    steps = [f"Put the {g}, milk and water in a small pan.",
             r.choice(["Bring it slowly to a simmer, stirring all the time so it does not stick.", "Heat it gently, stirring often.", "Set it over a low heat and keep stirring with a wooden spoon."]),
             f"Cook for {r.choice(['five', 'ten', 'twenty'])} minutes until thick and creamy.",
             f"Stir in the {spice}, then spoon into bowls.",
             f"Top with the {pf} and the sweetener, and eat it while it is warm."]
    return f"{tf} and {grain} Porridge", "2", r.choice(["15 minutes", "25 minutes"]), ing, steps


def cake(r):
    tf, pf, af = r.choice(FRUITS + [("Carrot", "carrot", "2 carrots, grated"), ("Honey", "honey", "half a cup of honey"),
                                    ("Almond", "almonds", "a cup of ground almonds"),
                                    ("Chocolate", "chocolate", "a cup of chopped dark chocolate")])
    ing = ["1 and a half cups flour", "1 cup sugar", "half a cup of soft butter", "2 eggs", "half a cup of milk",
           "2 teaspoons baking powder", af]
    steps = [r.choice(["Heat the oven to 180 degrees and grease a round tin.", "Turn the oven on to 180 degrees and line a tin with baking paper.", "Warm the oven to 175 degrees and butter a deep cake tin."]),
             r.choice(["Beat the butter and sugar together until pale and fluffy.", "Cream the butter with the sugar until light.", "Whisk the soft butter and the sugar for a few minutes, until creamy."]),
             r.choice(["Beat in the eggs one at a time, then the milk.", "Add the eggs and the milk and mix well.", "Crack in the eggs, beating after each one, and stir in the milk."]),
             f"Fold in the flour, the baking powder and the {pf}.",
             f"Pour into the tin and bake for {r.choice(['thirty', 'thirty five', 'forty'])} minutes, until a "
             "skewer comes out clean.",
             r.choice(["Let it cool in the tin for ten minutes before turning it out.", "Leave it to cool on a rack before slicing.", "Cool it completely, then dust the top with a little sugar."])]
    return f"{tf} {r.choice(['Cake', 'Loaf Cake', 'Sponge', 'Traybake'])}", "8", "1 hour", ing, steps


RECIPE_KINDS = [soup, salad, bread, stew, pie, porridge, cake]
TIPS = ["Tip: it keeps well in the fridge for two days.", "Tip: it tastes even better the next day.",
        "Tip: double the amounts and freeze half for later.", "Tip: use whatever is fresh at the market.",
        "Tip: children like to help with this one.", "Tip: a squeeze of lemon at the end lifts the flavour."]


def make_recipes(r: random.Random) -> str:
    out, seen = [], set()
    while len(out) < 90:
        title, serves, time, ing, steps = r.choice(RECIPE_KINDS)(r)
        if title in seen:
            continue
        seen.add(title)
        serves_line = f"Serves {serves}." if serves[0].isdigit() else f"Makes {serves}."
        text = f"{title}\n\n{serves_line} Time: {time}.\n\nIngredients:\n" + "\n".join(f"- {i}" for i in ing)
        text += "\n\nSteps:\n" + "\n".join(f"{k}. {s}" for k, s in enumerate(steps, 1)) + "\n"
        if r.random() < 0.4:
            text += "\n" + r.choice(TIPS) + "\n"
        out.append(text)
    return "# recipes: simple home recipes with ingredients and numbered steps, written for tinylm\n" + "\n\n".join(out)


# ---------------------------------------------------------------- verses
SUBJECTS = [
    ("The little wren", "Wren"), ("My father", "Father"), ("The old grey mare", "Mare"), ("The silver moon", "Moon"),
    ("The river", "River"), ("The west wind", "Wind"), ("The baker's boy", "Baker's Boy"), ("A sleepy cat", "Cat"),
    ("The farmer's wife", "Farmer's Wife"), ("The morning star", "Morning Star"), ("A lonely crow", "Crow"),
    ("The miller", "Miller"), ("The sailor", "Sailor"), ("My grandmother", "Grandmother"),
    ("The shepherd", "Shepherd"), ("A tiny bee", "Bee"), ("The fiddler", "Fiddler"), ("The evening bell", "Bell"),
    ("A quiet fox", "Fox"), ("The blackbird", "Blackbird"), ("My sister", "Sister"), ("The ferryman", "Ferryman"),
    ("The weaver", "Weaver"), ("A wandering lamb", "Lamb"), ("The lamplighter", "Lamplighter"),
]
# Each group holds predicates that rhyme with one another; a couplet takes two from one group.
RHYMES = [
    ["is singing softly in the night", "keeps a candle burning bright", "goes walking by the pale moonlight",
     "has vanished somewhere out of sight", "is waiting for the morning light"],
    ["goes rolling down toward the sea", "is dancing underneath the tree", "has found a way to wander free",
     "is humming like a honey bee", "has saved a cup of tea for me"],
    ["is dreaming of a summer day", "has gone a long and winding way", "is gathering the golden hay",
     "will sing until the sky is grey", "has nothing more to say today"],
    ["is walking slowly down the lane", "is tapping on the window pane", "has gone out dancing in the rain",
     "is coming home to us again", "is counting every grain"],
    ["is humming an old and gentle song", "has waited for the spring so long", "is marching where the reeds are strong",
     "knows the way where we belong", "sings the whole day long"],
    ["is rising slowly with the moon", "will come back home to us soon", "is whistling a merry tune",
     "is dozing in the heat of noon", "sings beneath the silver moon"],
    ["is climbing up the windy hill", "is standing by the water mill", "is listening, quiet and still",
     "has drunk the river water chill", "is dancing on the window sill"],
    ["is sleeping by the kitchen fire", "is singing with the village choir", "is climbing ever higher",
     "is resting by the garden briar", "has all that it could desire"],
    ["is sailing on the morning tide", "is waiting on the other side", "has opened every window wide",
     "is walking with a steady stride", "has nothing left to hide"],
    ["is looking for the evening star", "has wandered off so very far", "is singing by the harbour bar",
     "has left the garden gate ajar", "is riding in a painted car"],
    ["is counting sheep upon the green", "is the finest that I have seen", "is washing all the dishes clean",
     "has wandered where the woods are green", "stands proud as any queen"],
    ["is laughing at the falling snow", "is watching where the rivers flow", "has somewhere far away to go",
     "is singing soft and singing low", "is waiting for the seeds to grow"],
    ["is standing in the golden corn", "has woken with the early morn", "is playing on a silver horn",
     "is mending a coat that was torn", "was singing on the day I was born"],
    ["has left a light upon the shore", "is sweeping by the cottage door", "has found a shell upon the floor",
     "is dreaming of the days of yore", "will sing for us a little more"],
    ["is watching as the swallows fly", "is painting pictures on the sky", "is singing a soft lullaby",
     "has waved the summer a last goodbye", "is climbing where the clouds are high"],
    ["is resting where the roses grow", "has tied the ribbon in a bow", "is rowing slowly, to and fro",
     "has learned the things it needs to know", "is standing in the morning glow"],
    ["is baking bread for all the town", "is wearing a bright yellow gown", "is walking up and walking down",
     "has found a penny, bright and brown", "is dancing as the sun goes down"],
    ["is sitting by the open gate", "will never, ever, be too late", "is sweeping up the garden slate",
     "has learned to listen and to wait", "is carrying a heavy weight"],
]
CHORUSES = [
    "Sing hey, sing ho, the wind will blow,\nAnd round the world the seasons go.",
    "So sing it high and sing it low,\nThe river knows the way to go.",
    "And one for the road and two for the sea,\nAnd three for the bird in the apple tree.",
    "Hush now, hush now, close your eyes,\nThe stars are lighting up the skies.",
    "Turn the wheel and mind the mill,\nThe world goes round, and so it will.",
]
VERSE_TITLES = ["Song of the {}", "The {} at Evening", "A Verse for the {}", "The {} and the Sea", "Where the {} Goes",
                "The {} in Spring", "A Lullaby for the {}", "The Ballad of the {}"]


def stanza(r: random.Random) -> str:
    lines = []
    subjects = iter(r.sample(SUBJECTS, 4))
    for group in r.sample(RHYMES, 2):
        for k, predicate in enumerate(r.sample(group, 2)):
            subject = next(subjects)[0]
            lines.append(f"{subject} {predicate}{',' if k == 0 else '.'}")
    return "\n".join(lines)


def make_verses(r: random.Random) -> str:
    out, seen = [], set()
    while len(out) < 85:
        title = r.choice(VERSE_TITLES).format(r.choice(SUBJECTS)[1])
        if title in seen:
            continue
        seen.add(title)
        stanzas = [stanza(r) for _ in range(r.choice([2, 3, 3]))]
        if r.random() < 0.35:
            chorus = r.choice(CHORUSES)
            stanzas = [s + "\n" + chorus for s in stanzas]
        out.append(title + "\n\n" + "\n\n".join(stanzas) + "\n")
    return "# verses: short rhyming verses and songs written for tinylm\n" + "\n\n".join(out)


def main() -> None:
    for name, make, seed in [("fables", make_fables, 1), ("recipes", make_recipes, 2), ("verses", make_verses, 3)]:
        text = make(random.Random(seed))
        (OUT / f"{name}.txt").write_text(text, encoding="utf-8")
        print(f"{name}.txt: {len(text.encode('utf-8')):,} bytes")


if __name__ == "__main__":
    main()
