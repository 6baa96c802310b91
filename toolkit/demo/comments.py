"""Synthetic shop comments, one UTF-8 `.txt` file per sample (nothing is downloaded).

`make_comments`: comments in English, Chinese and French, labelled praise, complaint, question or
spam. Classes share products, features and delivery words, and negations, mixed reviews,
question-shaped complaints and spam dressed as praise overlap them, so a bag-of-words baseline
learns most but not all of it.

Randomness comes from `random.Random` seeded with a string and read only through `random()`: the
one method (and seeding) whose stream Python promises to keep across versions, so a seed writes
the same comments on every Python.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from toolkit.demo.folder import check_maker_args

COMMENT_CLASSES: tuple[str, ...] = ("complaint", "praise", "question", "spam")
COMMENT_LANGUAGES: tuple[str, ...] = ("en", "zh", "fr")

_BOM_RATE = 0.1
_MIX_RATE = 0.35  # The main sentence is built from clauses that every class uses.
_NEUTRAL_RATE = 0.35  # A neutral sentence (shared by all classes) joins the comment.
_EMOJI_RATE = 0.3
_TYPO_RATE = 0.2  # Latin text only: one swapped or dropped letter.
_LOWER_RATE = 0.1  # Latin text only: typed all in lower case.

_SLOT = re.compile(r"\{(\w+)\}")

# Slot fillers and templates per language. A `{slot}` draws a fresh filler each time it occurs;
# fillers may hold slots themselves. French fillers are singular and the adjectives are ones
# that do not change with gender, so any filler fits any template.
_BANKS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "product": ("blender", "phone case", "backpack", "desk lamp", "charger", "kettle",
                    "keyboard", "frying pan", "smartwatch", "vacuum cleaner", "yoga mat",
                    "water bottle", "rain jacket", "coffee grinder", "wireless mouse"),
        "feature": ("battery", "screen", "zipper", "handle", "cable", "lid", "strap", "button",
                    "fabric", "motor", "stitching", "coating", "charging port", "manual"),
        "pos": ("great", "excellent", "perfect", "amazing", "solid", "fantastic", "really good",
                "well made", "sturdy", "lovely", "superb", "good"),
        "neg": ("terrible", "awful", "flimsy", "useless", "cheap", "poorly made",
                "disappointing", "broken", "bad", "horrible"),
        "time": ("two days", "a week", "three weeks", "a month", "one day", "10 days",
                 "two months", "an hour"),
        "amount": ("$20", "$35", "$12.99", "$49", "$89", "this price", "the money"),
        "place": ("Canada", "the UK", "Germany", "Australia", "Texas", "Ireland"),
        "accessory": ("a charger", "a carrying case", "batteries", "a warranty card",
                      "spare parts", "a manual in English"),
        "relative": ("mom", "dad", "wife", "husband", "son", "daughter", "boss"),
        "courier": ("UPS", "FedEx", "DHL", "Royal Mail", "USPS"),
        "delivery": ("delivery", "shipping", "courier", "package"),
        "posadv": ("perfectly", "fine", "great", "like a charm", "flawlessly", "as advertised"),
        "fast": ("fast", "quick", "on time", "early", "super quick"),
        "slow": ("slow", "late", "a mess", "very slow", "a nightmare"),
        "broke": ("broke", "died", "cracked", "came off", "stopped working"),
        "clause_pos": ("the {feature} is {pos}", "the {product} works {posadv}",
                       "the {delivery} was {fast}", "it looks {pos}", "the {feature} feels {pos}",
                       "the {product} does the job"),
        "clause_neg": ("the {feature} is {neg}", "the {feature} {broke} after {time}",
                       "the {delivery} was {slow}", "it looks {neg}", "the {feature} feels {neg}",
                       "the {product} is {neg}"),
        "spam_tail": ("more deals at {url}", "DM me for a discount code",
                      "I sell them cheaper on {chat}", "follow me for giveaways"),
        "praise_mix": ("{clause_neg}, but {clause_pos}", "although {clause_neg}, {clause_pos}",
                       "{clause_neg} at first, but now {clause_pos}",
                       "{clause_pos} and {clause_pos}"),
        "complaint_mix": ("{clause_pos}, but {clause_neg}", "although {clause_pos}, {clause_neg}",
                          "{clause_pos} at first, but now {clause_neg}",
                          "{clause_neg} and {clause_neg}"),
        "question_mix": ("is it true that {clause_neg}?", "is it true that {clause_pos}?",
                         "reviews say {clause_neg}, is that still the case?",
                         "can anyone confirm {clause_pos}?"),
        "spam_mix": ("{clause_pos}, and you can win one for free at {url}",
                     "{clause_neg}? Get a better one at {url}", "{clause_pos}. P.S. {spam_tail}"),
        "url": ("www.{site}.com", "{site}.shop", "http://{site}.net/deal", "bit.ly/{code}"),
        "site": ("best-deals", "cheapgoods", "promo-club", "mega-sale", "gift4you"),
        "code": ("3xK9q", "a7Pz2", "Qm4rT", "k2Lw8"),
        "chat": ("WhatsApp", "Telegram", "my profile", "Instagram"),
        "money": ("$500", "$3000", "$250 a day", "$900"),
        "neutral": ("Ordered it on a Monday", "Bought it as a gift for my {relative}",
                    "Second order from this shop", "I mostly use it at the office",
                    "It came with {courier}", "Got the black one", "Had it for {time} now",
                    "Thanks", "Just my two cents", "The {delivery} took {time}",
                    "I compared it with a {product} from another shop"),
        "praise": (
            "The {product} is {pos}, the {delivery} was fast too",
            "Really happy with this {product}, the {feature} is {pos}",
            "Not bad at all for {amount}",
            "Can't complain, the {feature} works perfectly",
            "{pos} {product}, would buy again",
            "Did not expect much for {amount} but the {product} is {pos}",
            "Bit pricey, but the {feature} is {pos} and it arrived in {time}",
            "The {delivery} took {time}, but it was worth the wait",
            "Not a single problem after {time} of daily use",
            "Works exactly as described, no issues with the {feature}",
            "My {relative} loves the {product}",
            "Five stars, the {feature} is {pos}",
            "Why didn't I buy this sooner?",
            "Was worried about the {feature} after reading reviews, but it is {pos}",
            "Good value for {amount}",
            "Not cheap, not flimsy, the {product} is just {pos}",
            "The {feature} is not bad, the rest is {pos}",
            "Who said the {feature} is {neg}? Mine is {pos}",
            "Still thinking about it? The {product} is {pos}",
            "Great shop, the discount code worked and the {product} is {pos}",
        ),
        "complaint": (
            "The {product} is {neg}, the {feature} broke after {time}",
            "Not good, the {feature} stopped working after {time}",
            "The {delivery} took {time} and the {product} arrived damaged",
            "Not worth {amount}",
            "I want a refund, the {feature} is {neg}",
            "Looks {pos} in the photos but the {feature} is {neg}",
            "Why does the {feature} stop working after {time}?",
            "Still waiting for my refund after {time}, nobody replies",
            "Would not recommend, the {product} is {neg}",
            "The first one was {pos}, the replacement {product} is {neg}",
            "Not as good as the reviews say, the {feature} is {neg}",
            "Where is my package?? Ordered {time} ago",
            "The {feature} is not {pos} at all",
            "Returned it, the {feature} is {neg}",
            "Expected better for {amount}",
            "Is this a joke? The {feature} is {neg}",
            "Seriously, does anyone check these before shipping?",
            "How is this {pos}? The {feature} {broke} after {time}",
            "Messaged the seller on {chat} about the {feature}, no reply",
            "The {product} is fine but the {feature} is {neg}",
        ),
        "question": (
            "Does the {product} come with {accessory}?",
            "How long does shipping to {place} take?",
            "Is the {feature} good enough for daily use?",
            "Can I return the {product} if the {feature} is {neg}?",
            "Has anyone used it for more than {time}? How is the {feature}?",
            "What is the difference between this {product} and the cheaper one?",
            "Is it worth {amount}?",
            "Does it ship to {place}, and how much is shipping?",
            "Wondering if the {feature} can be replaced",
            "Got mine yesterday, how do I reset the {feature}?",
            "Is the {product} waterproof?",
            "Is the {feature} as {pos} as people say?",
            "Would this {product} work for my {relative}?",
            "Any update on when the {product} is back in stock",
            "Please tell me if the {feature} is replaceable",
            "Looking for the size chart of this {product}",
            "Is there a discount code for a second {product}?",
            "Does the seller answer on {chat}?",
        ),
        "spam": (
            "{pos} deals on every {product} at {url}",
            "I make {money} a week working from home, check {chat}",
            "Free gift card for the first 100 people, click {url}",
            "Buy followers and likes cheap, contact me on {chat}",
            "{pos} product! Also check my store, every {product} is 90% off",
            "Congratulations, you won a free {product}, claim it at {url}",
            "Want a {product} for $1? Message me on {chat}",
            "Get paid to write reviews like this one, visit {url}",
            "Free shipping on all orders today only at {url}",
            "Nice {product}. I sell the same one for {amount} less, DM me",
            "Earn money fast, no experience needed",
            "Want to earn {money} from home?",
            "Tired of {neg} products? Visit {url}",
            "The {feature} is {pos} and so is my crypto group, join on {chat}",
        ),
        "emoji": ("😍", "👍", "😡", "👎", "🤔", "😊", "🙄", "😂", "🔥", "💯", "🎁", "❤️", "🙏"),
    },
    "zh": {
        "product": ("耳机", "手表", "吸尘器", "手机壳", "双肩包", "台灯", "充电器", "电水壶",
                    "键盘", "平底锅", "保温杯", "鼠标", "冲锋衣", "瑜伽垫", "榨汁机"),
        "feature": ("电池", "屏幕", "拉链", "把手", "数据线", "盖子", "表带", "按键", "面料",
                    "电机", "做工", "涂层", "充电口", "说明书"),
        "pos": ("很好", "非常好", "不错", "很棒", "挺好", "超级好", "特别好", "完美", "很结实",
                "好"),
        "neg": ("很差", "太差了", "不好", "很烂", "不行", "很垃圾", "很廉价", "有问题",
                "不太好"),
        "time": ("两天", "一个星期", "三周", "一个月", "一天", "十天", "半个月", "两个月"),
        "amount": ("99元", "199块", "59元", "三百多", "一百块", "这个价"),
        "place": ("新疆", "西藏", "北京", "广州", "香港", "海南"),
        "accessory": ("充电器", "收纳袋", "说明书", "保修卡", "备用电池", "配件"),
        "relative": ("妈妈", "爸爸", "老婆", "老公", "孩子", "同事"),
        "courier": ("顺丰", "中通", "京东", "圆通", "韵达"),
        "delivery": ("快递", "物流", "发货"),
        "but": ("但是", "不过", "可是", "但"),
        "fast": ("很快", "挺快", "准时", "神速", "超快"),
        "slow": ("很慢", "太慢了", "拖了很久", "一团糟", "慢死了"),
        "broke": ("坏了", "裂了", "掉了", "不行了", "没反应了"),
        "clause_pos": ("{feature}{pos}", "{product}用着{pos}", "{delivery}{fast}", "看起来{pos}",
                       "{feature}手感{pos}", "{product}挺好用"),
        "clause_neg": ("{feature}{neg}", "{feature}用了{time}就{broke}", "{delivery}{slow}",
                       "看起来{neg}", "{feature}手感{neg}", "{product}{neg}"),
        "spam_tail": ("{chat}有优惠", "更多优惠看{url}", "关注我抽奖", "我这里更便宜，{chat}"),
        "praise_mix": ("{clause_neg}，{but}{clause_pos}", "虽然{clause_neg}，{but}{clause_pos}",
                       "一开始{clause_neg}，后来{clause_pos}", "{clause_pos}，而且{clause_pos}"),
        "complaint_mix": ("{clause_pos}，{but}{clause_neg}", "虽然{clause_pos}，{but}{clause_neg}",
                          "一开始{clause_pos}，后来{clause_neg}", "{clause_neg}，而且{clause_neg}"),
        "question_mix": ("听说{clause_neg}，是真的吗？", "{clause_pos}，是真的吗？",
                         "评论说{clause_neg}，现在还这样吗？", "有人能确认{clause_pos}吗？"),
        "spam_mix": ("{clause_pos}，还能免费领一个，{url}", "{clause_neg}？来我这买更好的，{chat}",
                     "{clause_pos}，另外{spam_tail}"),
        "url": ("www.{site}.com", "{site}.cn", "http://{site}.net"),
        "site": ("haohuo", "tejia888", "youhui", "mianfei", "qiangou"),
        "code": ("wx8823", "vip6688", "abc1357", "hao99"),
        "chat": ("加微信{code}", "加QQ{code}", "看我主页", "私信我"),
        "money": ("五百", "三千", "一万", "九百"),
        "neutral": ("周一下的单", "买来送给{relative}的", "第二次在这家店买了", "主要在办公室用",
                    "{courier}送的", "买的黑色", "用了{time}了", "谢谢", "仅供参考",
                    "{delivery}用了{time}", "和别家的{product}比较过"),
        "praise": (
            "{product}收到了，{feature}{pos}，{delivery}也很快",
            "买了{product}很开心，{feature}{pos}",
            "{amount}能买到这个，还不错",
            "没什么可挑剔的，{feature}用着没问题",
            "{product}{pos}，会回购",
            "本来没抱希望，没想到{product}这么好用",
            "有点贵，但是{feature}{pos}，{time}就到了",
            "{delivery}用了{time}，不过值得等",
            "用了{time}，一点问题都没有",
            "跟描述的一样，{feature}没有任何问题",
            "{relative}很喜欢这个{product}",
            "五星好评，{feature}{pos}",
            "为什么不早点买呢？",
            "之前看评论担心{feature}，结果{pos}",
            "{amount}很值",
            "不贵也不廉价，{product}{pos}",
            "{feature}还行，其他都{pos}",
            "谁说{feature}{neg}？我的就{pos}",
            "还在犹豫吗？{product}真的{pos}",
            "这家店{pos}，用了优惠券很划算",
        ),
        "complaint": (
            "{product}{neg}，{feature}用了{time}就坏了",
            "不好，{feature}用了{time}就不行了",
            "{delivery}用了{time}，{product}还是坏的",
            "{amount}不值",
            "要退款，{feature}{neg}",
            "图片上看着{pos}，实物{feature}{neg}",
            "为什么{feature}用了{time}就坏了？",
            "等退款等了{time}，没人回复",
            "不推荐，{product}{neg}",
            "第一个{pos}，换货的{product}{neg}",
            "没有评论说的那么好，{feature}{neg}",
            "我的快递呢？？下单{time}了",
            "{feature}一点也不好",
            "已经退货了，{feature}{neg}",
            "{amount}买这个，期望更高",
            "这是开玩笑吗？{feature}{neg}",
            "发货前没人检查吗？",
            "这也叫质量好？{feature}用了{time}就{broke}",
            "加了客服微信，{feature}的问题也没人管",
            "{product}还可以，但是{feature}{neg}",
        ),
        "question": (
            "{product}带{accessory}吗？",
            "{delivery}到{place}要多久？",
            "{feature}日常用够不够？",
            "如果{feature}{neg}可以退{product}吗？",
            "有人用了{time}以上吗？{feature}怎么样？",
            "这款{product}和便宜的那款有什么区别？",
            "{amount}值得买吗？",
            "能寄到{place}吗？{delivery}多少钱？",
            "想问一下{feature}可以换吗",
            "昨天收到了，{feature}怎么重置？",
            "{product}防水吗？",
            "{feature}真的像大家说的那么好吗？",
            "这个{product}适合{relative}用吗？",
            "{product}什么时候有货",
            "请问{product}有别的颜色",
            "求{product}的尺码表",
            "有优惠券吗？想再买一个{product}",
            "客服微信是多少？想问{feature}的事",
        ),
        "spam": (
            "全场{product}一折起，{url}",
            "在家兼职月入{money}，{chat}",
            "前一百名免费领礼品卡，点击{url}",
            "刷粉刷赞，{chat}",
            "{product}{pos}！顺便看看我的店，{product}全部一折",
            "恭喜您获得免费{product}一台，点击{url}领取",
            "想要一块钱的{product}吗？{chat}",
            "写好评就能赚钱，详情见{url}",
            "今天全场包邮，{delivery}免费，{url}",
            "同款{product}我这里更便宜，{chat}",
            "轻松赚钱，不需要经验",
            "想在家赚{money}吗？{chat}",
            "{product}{neg}？来{url}看看",
            "{feature}{pos}，我的理财群也{pos}，{chat}",
        ),
        "emoji": ("😍", "👍", "😡", "👎", "🤔", "😊", "🙄", "😂", "🔥", "💯", "🎁", "❤️", "🙏"),
    },
    "fr": {
        "product": ("le casque", "la montre", "l'aspirateur", "la coque", "le sac à dos",
                    "la lampe de bureau", "le chargeur", "la bouilloire", "le clavier",
                    "la poêle", "la gourde", "la souris", "la veste", "le tapis de yoga",
                    "le mixeur"),
        "feature": ("la batterie", "l'écran", "la fermeture éclair", "la poignée", "le câble",
                    "le couvercle", "le bracelet", "le bouton", "le tissu", "le moteur",
                    "le revêtement", "le port de charge", "la notice"),
        "pos": ("super", "top", "impeccable", "solide", "pratique", "fiable", "efficace",
                "agréable", "très bien", "nickel", "magnifique", "formidable"),
        "neg": ("fragile", "horrible", "médiocre", "inutilisable", "de mauvaise qualité",
                "minable", "bas de gamme", "catastrophique", "lamentable"),
        "time": ("deux jours", "une semaine", "trois semaines", "un mois", "dix jours",
                 "une journée", "deux mois"),
        "amount": ("20 €", "35 €", "12,99 €", "49 €", "89 €", "ce prix"),
        "place": ("en Belgique", "au Québec", "en Suisse", "en Corse", "à la Réunion"),
        "accessory": ("un chargeur", "une housse", "des piles", "une garantie",
                      "des pièces de rechange", "une notice en français"),
        "relative": ("ma mère", "mon père", "ma femme", "mon mari", "mon fils", "ma fille"),
        "courier": ("Colissimo", "Chronopost", "DHL", "Mondial Relay", "UPS"),
        "delivery": ("la livraison", "le colis", "le livreur"),
        "posadv": ("parfaitement", "très bien", "sans souci", "nickel", "comme prévu"),
        "fast": ("rapide", "super rapide", "dans les temps", "impeccable"),
        "slow": ("en retard", "un vrai cauchemar", "une galère", "très en retard"),
        "clause_pos": ("{feature} est {pos}", "{product} marche {posadv}",
                       "{delivery} a été {fast}", "ça a l'air {pos}",
                       "{feature} est vraiment {pos}", "{product} fait le travail"),
        "clause_neg": ("{feature} est {neg}", "{feature} a lâché après {time}",
                       "{delivery} a été {slow}", "ça a l'air {neg}",
                       "{feature} est vraiment {neg}", "{product} est {neg}"),
        "spam_tail": ("plus de promos sur {url}", "écrivez-moi pour un code promo",
                      "je les vends moins cher sur {chat}", "abonnez-vous pour les concours"),
        "praise_mix": ("{clause_neg}, mais {clause_pos}", "même si {clause_neg}, {clause_pos}",
                       "au début {clause_neg}, mais maintenant {clause_pos}",
                       "{clause_pos} et {clause_pos}"),
        "complaint_mix": ("{clause_pos}, mais {clause_neg}", "même si {clause_pos}, {clause_neg}",
                          "au début {clause_pos}, mais maintenant {clause_neg}",
                          "{clause_neg} et {clause_neg}"),
        "question_mix": ("c'est vrai que {clause_neg} ?", "c'est vrai que {clause_pos} ?",
                         "les avis disent que {clause_neg}, c'est toujours le cas ?",
                         "quelqu'un peut confirmer que {clause_pos} ?"),
        "spam_mix": ("{clause_pos}, et vous pouvez en gagner un gratuitement sur {url}",
                     "{clause_neg} ? Trouvez mieux sur {url}", "{clause_pos}. PS : {spam_tail}"),
        "url": ("www.{site}.fr", "{site}.shop", "http://{site}.com/promo", "bit.ly/{code}"),
        "site": ("bons-plans", "promo-club", "mega-soldes", "cadeau4u", "prix-fous"),
        "code": ("3xK9q", "a7Pz2", "Qm4rT", "k2Lw8"),
        "chat": ("WhatsApp", "Telegram", "mon profil", "Instagram"),
        "money": ("500 €", "3000 €", "250 € par jour", "900 €"),
        "neutral": ("Commandé un lundi", "C'était un cadeau pour {relative}",
                    "Deuxième commande dans cette boutique", "Je l'utilise surtout au bureau",
                    "Livré par {courier}", "J'ai pris la couleur noire",
                    "Je l'ai depuis {time}", "Merci", "Voilà mon avis",
                    "{delivery} a mis {time}", "J'ai comparé avec {product} d'une autre marque"),
        "praise": (
            "{product} est {pos}, et {delivery} a été rapide",
            "Très contente de mon achat, {feature} est {pos}",
            "Pas mal du tout pour {amount}",
            "Rien à redire, {feature} fonctionne parfaitement",
            "Produit {pos}, je rachèterai sans hésiter",
            "Je n'attendais pas grand-chose pour {amount}, mais c'est {pos}",
            "Un peu cher, mais {feature} est {pos} et le colis est arrivé en {time}",
            "{delivery} a pris {time}, mais ça valait le coup",
            "Aucun problème après {time} d'utilisation",
            "Conforme à la description, {feature} est {pos}",
            "Acheté pour {relative}, très apprécié",
            "Cinq étoiles, {feature} est {pos}",
            "Pourquoi je ne l'ai pas acheté plus tôt ?",
            "J'avais peur pour {feature} après les avis, mais c'est {pos}",
            "Bon rapport qualité-prix pour {amount}",
            "Pas cher, pas fragile, juste {pos}",
            "{feature} n'est pas terrible mais le reste est {pos}",
            "Qui a dit que {feature} est {neg} ? Chez moi c'est {pos}",
            "Vous hésitez encore ? {product} est {pos}",
            "Boutique {pos}, le code promo a marché et {product} est {pos}",
        ),
        "complaint": (
            "{product} est {neg}, {feature} a lâché au bout de {time}",
            "Pas terrible, {feature} ne marche plus après {time}",
            "{delivery} a pris {time} et le colis est arrivé abîmé",
            "Ça ne vaut pas {amount}",
            "Je veux être remboursé, {feature} est {neg}",
            "Sur les photos c'est {pos}, en vrai {feature} est {neg}",
            "Pourquoi {feature} ne fonctionne plus après {time} ?",
            "Toujours pas remboursé après {time}, personne ne répond",
            "Je ne recommande pas, {product} est {neg}",
            "Le premier était {pos}, mais le remplaçant est {neg}",
            "Pas aussi bien que les avis le disent, {feature} est {neg}",
            "Il est où mon colis ?? Commandé il y a {time}",
            "{feature} n'est pas {pos} du tout",
            "Renvoyé, {feature} est {neg}",
            "Déçu, je m'attendais à mieux pour {amount}",
            "C'est une blague ? {feature} est {neg}",
            "Personne ne vérifie avant d'envoyer ?",
            "C'est ça, {pos} ? {feature} a lâché après {time}",
            "J'ai écrit au vendeur sur {chat} pour {feature}, aucune réponse",
            "{product} est correct mais {feature} est {neg}",
        ),
        "question": (
            "Est-ce que {product} vient avec {accessory} ?",
            "Combien de temps pour une livraison {place} ?",
            "Est-ce que {feature} est assez solide pour un usage quotidien ?",
            "Peut-on retourner {product} si {feature} est {neg} ?",
            "Quelqu'un l'utilise depuis plus de {time} ? Que vaut {feature} ?",
            "Quelle est la différence avec le modèle moins cher ?",
            "Est-ce que ça vaut {amount} ?",
            "Vous livrez {place} ? Et la livraison coûte combien ?",
            "Je me demande si {feature} peut être changé",
            "Reçu hier, comment on réinitialise {feature} ?",
            "Est-ce que c'est étanche ?",
            "{feature} est vraiment aussi {pos} qu'on le dit ?",
            "Est-ce que ça conviendrait à {relative} ?",
            "Savez-vous quand {product} sera de nouveau en stock",
            "Merci de me dire si {feature} se remplace",
            "Je cherche le guide des tailles",
            "Il y a un code promo pour un deuxième achat ?",
            "Est-ce que le vendeur répond sur {chat} ?",
        ),
        "spam": (
            "Promos {pos} sur tous les produits sur {url}",
            "Je gagne {money} par semaine depuis chez moi, voir {chat}",
            "Carte cadeau offerte aux 100 premiers, cliquez sur {url}",
            "Achetez des abonnés et des likes pas cher, contactez-moi sur {chat}",
            "Produit {pos} ! Et passez voir ma boutique, tout est à -90 %",
            "Félicitations, vous avez gagné un cadeau, réclamez-le sur {url}",
            "Envie d'un article à 1 € ? Écrivez-moi sur {chat}",
            "Soyez payé pour écrire des avis comme celui-ci, rendez-vous sur {url}",
            "Livraison gratuite aujourd'hui seulement sur {url}",
            "Je vends le même moins cher, écrivez-moi sur {chat}",
            "Gagnez de l'argent rapidement, sans expérience",
            "Envie de gagner {money} depuis chez vous ?",
            "Marre d'un produit {neg} ? Allez sur {url}",
            "{feature} est {pos}, et mon groupe crypto aussi, rejoignez-nous sur {chat}",
        ),
        "emoji": ("😍", "👍", "😡", "👎", "🤔", "😊", "🙄", "😂", "🔥", "💯", "🎁", "❤️", "🙏"),
    },
}

# Sentence ends per language; a template that already ends in "?" keeps it.
_ENDS: dict[str, tuple[str, ...]] = {
    "en": (".", ".", "!", "", "!!", "...", "!!!"),
    "fr": (".", ".", " !", "!", "", "...", " !!"),
    "zh": ("。", "。", "！", "", "！！", "…", "～"),
}



def _pick(rng: random.Random, items: Sequence[str]) -> str:
    # Only random() has a stream Python keeps across versions; choice() does not promise it.
    return items[int(rng.random() * len(items))]


def _fill(rng: random.Random, bank: dict[str, tuple[str, ...]], template: str) -> str:
    """Replace each `{slot}` with a filler from `bank`, recursively (fillers may hold slots)."""
    while _SLOT.search(template):
        template = _SLOT.sub(lambda m: _pick(rng, bank[m.group(1)]), template)
    return template


def _typo(rng: random.Random, text: str) -> str:
    """Swap two neighbouring letters of one word, or drop one letter, as a hurried typist would."""
    words = list(re.finditer(r"[^\W\d_]{4,}", text))
    if not words:
        return text
    word = words[int(rng.random() * len(words))]
    at = word.start() + 1 + int(rng.random() * (len(word.group()) - 2))
    if rng.random() < 0.5:
        return text[:at] + text[at + 1] + text[at] + text[at + 2:]
    return text[:at] + text[at + 1:]


def _comment(rng: random.Random, label: str, language: str) -> str:
    """Write one comment of class `label` in `language`."""
    bank = _BANKS[language]
    templates = bank[f"{label}_mix"] if rng.random() < _MIX_RATE else bank[label]
    sentences = [_fill(rng, bank, _pick(rng, templates))]
    if rng.random() < _NEUTRAL_RATE:
        neutral = _fill(rng, bank, _pick(rng, bank["neutral"]))
        sentences.insert(0 if rng.random() < 0.5 else 1, neutral)
    ended = []
    for k, sentence in enumerate(sentences, start=1):
        sentence = sentence[0].upper() + sentence[1:]
        if not sentence.endswith(("?", "？")):
            # Only the last sentence may go without an end mark, or two would run together.
            ends = _ENDS[language] if k == len(sentences) else _ENDS[language][:3]
            sentence += _pick(rng, ends)
        ended.append(sentence)
    # Chinese is written without spaces between words or sentences.
    sep = "" if language == "zh" else " "
    text = sep.join(ended)
    if rng.random() < _EMOJI_RATE:
        text += sep + "".join(_pick(rng, bank["emoji"]) for _ in range(1 + int(rng.random() * 2)))
    if language != "zh":
        if rng.random() < _TYPO_RATE:
            text = _typo(rng, text)
        if rng.random() < _LOWER_RATE:
            text = text.lower()
    return text


def make_comments(out: Path, per_class: int = 200, seed: int = 0,
                  languages: tuple[str, ...] = COMMENT_LANGUAGES) -> int:
    """Write synthetic shop comments, one UTF-8 `.txt` file per comment.

    The layout is `out/<class>/00000.txt` ... for each of COMMENT_CLASSES. Each comment is in one
    language drawn at random from `languages`; about one file in ten starts with a UTF-8 byte
    order mark, as files saved by some Windows editors do. A file holds exactly the comment, with
    no trailing newline.

    Args:
        out: Folder to create; it must not exist or be empty.
        per_class: Number of comments for each class.
        seed: Seed; the same seed and languages write byte-identical files on any Python.
        languages: Codes out of COMMENT_LANGUAGES ("en", "zh", "fr") to draw from.

    Returns:
        The number of files written.

    Raises:
        ValueError: If per_class or seed is out of range, or `languages` is empty, repeats a
            code or holds an unknown one.
        FileExistsError: If `out` is a file or a non-empty folder.
    """
    if isinstance(languages, str) or not languages:
        raise ValueError(f"languages must be a non-empty tuple of codes such as ('zh',). "
                         f"Got {languages!r}.")
    unknown = [code for code in languages if code not in COMMENT_LANGUAGES]
    if unknown:
        raise ValueError(f"Unknown language {unknown[0]!r}; valid languages: "
                         f"{', '.join(COMMENT_LANGUAGES)}.")
    if len(set(languages)) != len(languages):
        raise ValueError(f"languages repeats a code: {languages!r}. Give each language once.")
    out = check_maker_args("make_comments", out, per_class, seed)

    written = 0
    for label in COMMENT_CLASSES:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            # One generator per file, keyed by (seed, class, index): a comment does not depend on
            # per_class or on the order comments are made in. A str seed is hashed with SHA-512.
            rng = random.Random(f"comments/{seed}/{label}/{i}")
            language = _pick(rng, languages)
            data = _comment(rng, label, language).encode("utf-8")
            if rng.random() < _BOM_RATE:
                data = b"\xef\xbb\xbf" + data
            (folder / f"{i:05d}.txt").write_bytes(data)
            written += 1
    return written

